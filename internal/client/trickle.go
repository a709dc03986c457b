package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// SDPFragType is the media type of trickle-ICE and ICE-restart PATCH bodies
// (RFC 8840 §9, RFC 9725 §4.4).
const SDPFragType = "application/trickle-ice-sdpfrag"

// candidateQueue collects the candidates pion gathers, in order, until
// gathering completes. It never blocks pion's callback.
type candidateQueue struct {
	mu     sync.Mutex
	list   []webrtc.ICECandidateInit
	done   bool
	signal chan struct{} // capacity 1: something was added
}

func newCandidateQueue(pc *webrtc.PeerConnection) *candidateQueue {
	q := &candidateQueue{signal: make(chan struct{}, 1)}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		q.mu.Lock()
		if q.done {
			q.mu.Unlock()
			return // a later gathering (ICE restart) is not trickled
		}
		if c == nil {
			q.done = true // pion's end of gathering
		} else {
			q.list = append(q.list, c.ToJSON())
		}
		q.mu.Unlock()
		select {
		case q.signal <- struct{}{}:
		default:
		}
	})
	return q
}

// next returns the candidates gathered since the last call and whether
// gathering is complete, waiting until there is something to return.
func (q *candidateQueue) next(ctx context.Context) ([]webrtc.ICECandidateInit, bool, error) {
	for {
		q.mu.Lock()
		list, done := q.list, q.done
		q.list = nil
		q.mu.Unlock()
		if len(list) > 0 || done {
			return list, done, nil
		}
		select {
		case <-q.signal:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("ICE gathering: %w", ctx.Err())
		}
	}
}

// trickle sends each candidate the queue yields in its own PATCH, and then
// a=end-of-candidates, each answered by 204 (RFC 9725 §4.4.1). offer is the
// local offer, for the ICE credentials and the media section.
func trickle(ctx context.Context, s *Session, offer string, q *candidateQueue) error {
	for {
		list, done, err := q.next(ctx)
		if err != nil {
			return err
		}
		for _, c := range list {
			frag, err := fragmentOf(offer, []webrtc.ICECandidateInit{c}, false)
			if err != nil {
				return err
			}
			if err := s.patchTrickle(ctx, frag); err != nil {
				return err
			}
			s.trickled.Add(1)
		}
		if done {
			frag, err := fragmentOf(offer, nil, true)
			if err != nil {
				return err
			}
			return s.patchTrickle(ctx, frag)
		}
	}
}

// fragmentOf builds a trickle-ICE SDP fragment from a local description:
// the BUNDLE group, then the first media section (which carries the bundled
// transport) with its mid, the ICE credentials, the candidates and, when end
// is set, a=end-of-candidates — the shape of RFC 9725 §4.4.1's example.
func fragmentOf(local string, cands []webrtc.ICECandidateInit, end bool) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(local); err != nil {
		return "", fmt.Errorf("local description: %w", err)
	}
	if len(d.MediaDescriptions) == 0 {
		return "", errors.New("local description has no media section")
	}
	ufrag, pwd := iceCredentials(&d)
	if ufrag == "" || pwd == "" {
		return "", errors.New("local description has no ICE credentials")
	}
	var b strings.Builder
	if g, ok := d.Attribute("group"); ok {
		fmt.Fprintf(&b, "a=group:%s\r\n", g)
	}
	m := d.MediaDescriptions[0]
	fmt.Fprintf(&b, "m=%s %d %s %s\r\n", m.MediaName.Media, m.MediaName.Port.Value,
		strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " "))
	if mid, ok := m.Attribute("mid"); ok {
		fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
	}
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	for _, c := range cands {
		fmt.Fprintf(&b, "a=%s\r\n", strings.TrimPrefix(c.Candidate, "a="))
	}
	if end {
		b.WriteString("a=end-of-candidates\r\n")
	}
	return b.String(), nil
}

// iceCredentials returns the ICE ufrag and password of a description, from
// the session level or the first media section that has them.
func iceCredentials(d *sdp.SessionDescription) (ufrag, pwd string) {
	ufrag, _ = d.Attribute("ice-ufrag")
	pwd, _ = d.Attribute("ice-pwd")
	for _, m := range d.MediaDescriptions {
		if ufrag == "" {
			ufrag, _ = m.Attribute("ice-ufrag")
		}
		if pwd == "" {
			pwd, _ = m.Attribute("ice-pwd")
		}
	}
	return ufrag, pwd
}

// patchTrickle sends a trickle fragment; the server must answer 204.
func (s *Session) patchTrickle(ctx context.Context, frag string) error {
	resp, body, err := s.patch(ctx, frag, s.ETag())
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return &HTTPError{Method: http.MethodPatch, URL: s.location, Status: resp.StatusCode, Body: strings.TrimSpace(body)}
	}
	return nil
}

// patch sends one PATCH with an SDP fragment to the session URL, with
// If-Match when ifMatch is set, and returns the response and its body.
func (s *Session) patch(ctx context.Context, frag, ifMatch string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, s.location, strings.NewReader(frag))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", SDPFragType)
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	s.auth.set(req)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("PATCH %s: reading body: %w", s.location, err)
	}
	return resp, string(b), nil
}

// restartICE performs an ICE restart by PATCH (RFC 9725 §4.4.2): a new
// local offer with fresh ICE credentials, whose credentials and candidates
// go to the server as a fragment with If-Match set to the current ETag. The
// server answers 200 with its own new credentials and candidates and a new
// ETag; they are applied as an answer built from the previous remote
// description. If the server refuses, the connection's ICE state is not
// rolled back and media may not flow again.
func restartICE(ctx context.Context, pc *webrtc.PeerConnection, s *Session) error {
	etag := s.ETag()
	if etag == "" {
		return errors.New("ICE restart: the server gave no ETag")
	}
	prev := pc.RemoteDescription()
	if prev == nil {
		return errors.New("ICE restart: no remote description")
	}
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return fmt.Errorf("ICE restart offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("ICE restart: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fmt.Errorf("ICE restart gathering: %w", ctx.Err())
	}
	local := pc.LocalDescription().SDP
	var ld sdp.SessionDescription
	if err := ld.UnmarshalString(local); err != nil {
		return fmt.Errorf("ICE restart: local description: %w", err)
	}
	var cands []webrtc.ICECandidateInit
	for _, m := range ld.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key == "candidate" {
				cands = append(cands, webrtc.ICECandidateInit{Candidate: "candidate:" + a.Value})
			}
		}
		if len(cands) > 0 {
			break // bundled: the first section's candidates are all of them
		}
	}
	frag, err := fragmentOf(local, cands, true)
	if err != nil {
		return err
	}
	resp, body, err := s.patch(ctx, frag, etag)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Method: http.MethodPatch, URL: s.location, Status: resp.StatusCode, Body: strings.TrimSpace(body)}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != SDPFragType {
		return fmt.Errorf("ICE restart: answer has Content-Type %q, want %s", resp.Header.Get("Content-Type"), SDPFragType)
	}
	newTag := resp.Header.Get("ETag")
	if newTag == "" {
		return errors.New("ICE restart: 200 without ETag")
	}
	answer, err := applyFragment(prev.SDP, body)
	if err != nil {
		return fmt.Errorf("ICE restart: %w", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("ICE restart: set answer: %w", err)
	}
	s.setETag(newTag)
	return nil
}

// applyFragment returns the remote description prev with the ICE
// credentials and candidates of an answer fragment: the credentials are
// replaced everywhere, the old candidates dropped, and the new ones put in
// the media section with the same mid (the first one when the fragment
// names none).
func applyFragment(prev, frag string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(prev); err != nil {
		return "", fmt.Errorf("previous remote description: %w", err)
	}
	if len(d.MediaDescriptions) == 0 {
		return "", errors.New("previous remote description has no media section")
	}
	var ufrag, pwd, mid string
	byMid := map[string][]string{}
	var end []string // mids with a=end-of-candidates
	for _, line := range strings.Split(frag, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			mid = ""
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=candidate:"):
			byMid[mid] = append(byMid[mid], strings.TrimPrefix(line, "a=candidate:"))
		case line == "a=end-of-candidates":
			end = append(end, mid)
		}
	}
	if ufrag == "" || pwd == "" {
		return "", fmt.Errorf("answer fragment without ice-ufrag/ice-pwd: %.200q", frag)
	}
	replace := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := attrs[:0]
		for _, a := range attrs {
			switch a.Key {
			case "ice-ufrag":
				a.Value = ufrag
			case "ice-pwd":
				a.Value = pwd
			case "candidate", "end-of-candidates":
				continue
			}
			out = append(out, a)
		}
		return out
	}
	d.Origin.SessionVersion++
	d.Attributes = replace(d.Attributes)
	for i, m := range d.MediaDescriptions {
		m.Attributes = replace(m.Attributes)
		mmid, _ := m.Attribute("mid")
		cands := byMid[mmid]
		if i == 0 {
			cands = append(cands, byMid[""]...)
		}
		for _, c := range cands {
			m.Attributes = append(m.Attributes, sdp.NewAttribute("candidate", c))
		}
		for _, e := range end {
			if e == mmid || (e == "" && i == 0) {
				m.Attributes = append(m.Attributes, sdp.NewPropertyAttribute("end-of-candidates"))
				break
			}
		}
	}
	out, err := d.Marshal()
	if err != nil {
		return "", err
	}
	return string(out), nil
}
