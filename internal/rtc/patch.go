package rtc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// ErrBadFragment means a PATCH body is not a usable trickle-ICE SDP fragment.
var ErrBadFragment = errors.New("bad trickle-ice-sdpfrag")

// Fragment is a trickle-ICE SDP fragment (RFC 8840 §9, as RFC 9725 §4.3.1
// uses it): ICE credentials and candidates, grouped by media section.
type Fragment struct {
	Ufrag, Pwd string
	Candidates []webrtc.ICECandidateInit
	End        bool // a=end-of-candidates
}

// maxCandidates bounds what one PATCH may add.
const maxCandidates = 64

// ParseFragment reads a trickle-ICE SDP fragment. Unknown lines are ignored,
// as RFC 8840 §9 asks.
func ParseFragment(body string) (Fragment, error) {
	var f Fragment
	var mid string
	var mline uint16
	seenM := false
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "":
		case strings.HasPrefix(line, "m="):
			if seenM {
				mline++
			}
			seenM, mid = true, ""
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.Ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.Pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case line == "a=end-of-candidates":
			f.End = true
		case strings.HasPrefix(line, "a=candidate:"):
			if len(f.Candidates) >= maxCandidates {
				return f, fmt.Errorf("%w: more than %d candidates", ErrBadFragment, maxCandidates)
			}
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			if mid != "" {
				m := mid
				c.SDPMid = &m
			} else {
				i := mline
				c.SDPMLineIndex = &i
			}
			f.Candidates = append(f.Candidates, c)
		case len(line) < 2 || line[1] != '=':
			return f, fmt.Errorf("%w: line %.40q is not an SDP line", ErrBadFragment, line)
		}
	}
	if (f.Ufrag == "") != (f.Pwd == "") {
		return f, fmt.Errorf("%w: ice-ufrag and ice-pwd must come together", ErrBadFragment)
	}
	if f.Ufrag != "" {
		if err := CheckICEChars("ice-ufrag", f.Ufrag, 4); err != nil {
			return f, fmt.Errorf("%w: %v", ErrBadFragment, err)
		}
		if err := CheckICEChars("ice-pwd", f.Pwd, 22); err != nil {
			return f, fmt.Errorf("%w: %v", ErrBadFragment, err)
		}
	}
	return f, nil
}

// IsRestart reports whether the fragment carries ICE credentials other than
// the current remote ones, which RFC 9725 §4.4.2 calls an ICE restart.
func IsRestart(pc *webrtc.PeerConnection, f Fragment) bool {
	if f.Ufrag == "" {
		return false
	}
	ufrag, pwd := RemoteCredentials(pc)
	return f.Ufrag != ufrag || f.Pwd != pwd
}

// RemoteCredentials are the peer's current ICE ufrag and password, from
// the ICE transport when it has them (no description to parse).
func RemoteCredentials(pc *webrtc.PeerConnection) (ufrag, pwd string) {
	if p, err := pc.SCTP().Transport().ICETransport().GetRemoteParameters(); err == nil && p.UsernameFragment != "" {
		return p.UsernameFragment, p.Password
	}
	return credentials(pc.RemoteDescription())
}

// LocalCredentials are sluice's current ICE ufrag and password, from the
// ICE transport when it has them.
func LocalCredentials(pc *webrtc.PeerConnection) (ufrag, pwd string) {
	if p, err := pc.SCTP().Transport().ICETransport().GetLocalParameters(); err == nil && p.UsernameFragment != "" {
		return p.UsernameFragment, p.Password
	}
	return credentials(pc.LocalDescription())
}

func credentials(rd *webrtc.SessionDescription) (ufrag, pwd string) {
	if rd == nil {
		return "", ""
	}
	// Parse a private copy: rd.Unmarshal caches into pion's own description,
	// which pion's goroutines read concurrently.
	var d sdp.SessionDescription
	if err := d.UnmarshalString(rd.SDP); err != nil {
		return "", ""
	}
	return iceAttr(&d, "ice-ufrag"), iceAttr(&d, "ice-pwd")
}

func iceAttr(d *sdp.SessionDescription, key string) string {
	if v, ok := d.Attribute(key); ok {
		return v
	}
	for _, m := range d.MediaDescriptions {
		if v, ok := m.Attribute(key); ok {
			return v
		}
	}
	return ""
}

// Trickle adds the fragment's candidates to the ICE agent.
func Trickle(pc *webrtc.PeerConnection, f Fragment) error {
	for _, c := range f.Candidates {
		if err := pc.AddICECandidate(c); err != nil {
			return fmt.Errorf("%w: %v", ErrBadFragment, err)
		}
	}
	return nil
}

// Restart performs an ICE restart as the answerer: the remote offer is
// applied again with the fragment's credentials and candidates, and the
// answer's new credentials and candidates come back as a fragment
// (RFC 9725 §4.4.2). DTLS and media continue on the new ICE session.
func Restart(ctx context.Context, pc *webrtc.PeerConnection, f Fragment) (string, error) {
	rd := pc.RemoteDescription()
	if rd == nil {
		return "", fmt.Errorf("%w: no remote description", ErrBadFragment)
	}
	d := &sdp.SessionDescription{} // a private copy: it is edited below
	if err := d.UnmarshalString(rd.SDP); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadFragment, err)
	}
	d.Origin.SessionVersion++
	d.Attributes = replaceICE(d.Attributes, f)
	for _, m := range d.MediaDescriptions {
		m.Attributes = replaceICE(m.Attributes, f)
	}
	offer, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadFragment, err)
	}
	if err := SetOffer(pc, string(offer)); err != nil {
		return "", err
	}
	if err := Trickle(pc, f); err != nil {
		return "", err
	}
	answer, err := Answer(ctx, pc)
	if err != nil {
		return "", err
	}
	return answerFragment(answer)
}

// replaceICE swaps the ICE credentials and drops the old candidates.
func replaceICE(attrs []sdp.Attribute, f Fragment) []sdp.Attribute {
	out := attrs[:0]
	for _, a := range attrs {
		switch a.Key {
		case "ice-ufrag":
			a.Value = f.Ufrag
		case "ice-pwd":
			a.Value = f.Pwd
		case "candidate", "end-of-candidates":
			continue
		}
		out = append(out, a)
	}
	return out
}

// answerFragment extracts the ICE part of an answer as an SDP fragment.
func answerFragment(answer string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return "", err
	}
	return fragmentOf(&d, iceAttr(&d, "ice-ufrag"), iceAttr(&d, "ice-pwd"), nil), nil
}

// fragmentOf writes the ICE part of d as an SDP fragment with the given
// credentials and the candidates keep accepts (all when nil).
func fragmentOf(d *sdp.SessionDescription, ufrag, pwd string, keep func(candidate string) bool) string {
	var b strings.Builder
	if _, ok := d.Attribute("ice-lite"); ok {
		b.WriteString("a=ice-lite\r\n")
	}
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	if g, ok := d.Attribute("group"); ok {
		fmt.Fprintf(&b, "a=group:%s\r\n", g)
	}
	for _, m := range d.MediaDescriptions {
		fmt.Fprintf(&b, "m=%s %d %s %s\r\n", m.MediaName.Media, m.MediaName.Port.Value,
			strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " "))
		if mid, ok := m.Attribute("mid"); ok {
			fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
		}
		for _, a := range m.Attributes {
			if a.Key == "candidate" && (keep == nil || keep(a.Value)) {
				fmt.Fprintf(&b, "a=candidate:%s\r\n", a.Value)
			}
		}
		if _, ok := m.Attribute("end-of-candidates"); ok {
			b.WriteString("a=end-of-candidates\r\n")
		}
	}
	return b.String()
}
