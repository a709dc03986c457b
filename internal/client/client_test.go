package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// stub is the smallest WHIP/WHEP relay that exercises the clients: one
// stream, RTP forwarded through TrackLocalStaticRTP, viewer PLIs passed to
// the publisher. It knows nothing of GOPs; the real server is tested in
// test/e2e.
type stub struct {
	api   *webrtc.API
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	mu      sync.Mutex
	pcs     map[string]*webrtc.PeerConnection
	pub     *webrtc.PeerConnection
	pubSSRC uint32 // publisher's video SSRC
	nextID  int
	wg      sync.WaitGroup
}

func newStub(t *testing.T) *stub {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(H264Codec("42e01f", 1), webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	api, err := newAPI("http://127.0.0.1/", nil, me)
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{api: api, pcs: map[string]*webrtc.PeerConnection{}}
	vc := H264Codec("42e01f", 1).RTPCodecCapability
	if s.video, err = webrtc.NewTrackLocalStaticRTP(vc, "video", "stub"); err != nil {
		t.Fatal(err)
	}
	if s.audio, err = webrtc.NewTrackLocalStaticRTP(opusCapability, "audio", "stub"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 2:
		s.post(w, r, parts[0] == "whip")
	case r.Method == http.MethodDelete && len(parts) == 3:
		s.mu.Lock()
		pc := s.pcs[parts[2]]
		delete(s.pcs, parts[2])
		s.mu.Unlock()
		if pc == nil {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		_ = pc.GracefulClose()
	default:
		http.Error(w, "bad request", http.StatusBadRequest)
	}
}

func (s *stub) post(w http.ResponseWriter, r *http.Request, whip bool) {
	offer, _ := io.ReadAll(r.Body)
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.nextID++
	id := fmt.Sprint(s.nextID)
	s.pcs[id] = pc
	if whip {
		s.pub = pc
	}
	s.mu.Unlock()

	if whip {
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			out := s.audio
			if t.Kind() == webrtc.RTPCodecTypeVideo {
				out = s.video
				s.mu.Lock()
				s.pubSSRC = uint32(t.SSRC())
				s.mu.Unlock()
			}
			for {
				p, _, err := t.ReadRTP()
				if err != nil {
					return
				}
				_ = out.WriteRTP(p)
			}
		})
	} else {
		for _, tr := range []*webrtc.TrackLocalStaticRTP{s.video, s.audio} {
			sender, err := pc.AddTrack(tr)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			s.wg.Add(1)
			go s.forwardPLI(sender)
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotAcceptable)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	<-gathered
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", r.URL.Path+"/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

func (s *stub) forwardPLI(sender *webrtc.RTPSender) {
	defer s.wg.Done()
	for {
		pkts, _, err := sender.ReadRTCP()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				s.mu.Lock()
				pub, ssrc := s.pub, s.pubSSRC
				s.mu.Unlock()
				if pub != nil {
					_ = pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
				}
			}
		}
	}
}

func (s *stub) close() {
	s.mu.Lock()
	pcs := s.pcs
	s.pcs = nil
	s.mu.Unlock()
	for _, pc := range pcs {
		_ = pc.GracefulClose()
	}
	s.wg.Wait()
}

func TestPublishViewStub(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := loadClip(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	st := newStub(t)
	srv := httptest.NewServer(st)
	defer srv.Close()
	defer st.close()

	pub, err := Publish(ctx, srv.URL+"/whip/s", PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if !strings.HasPrefix(pub.Location(), srv.URL+"/whip/s/") {
		t.Errorf("Location %q not resolved against %s", pub.Location(), srv.URL)
	}
	v, err := View(ctx, srv.URL+"/whep/s", ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// Send the clip twice, quickly; the stub starts forwarding to the
	// viewer once its sender is bound, so the first packets may be missed.
	var sent [][][]byte
	const frame = 40 * time.Millisecond
	for i := range 2 * len(clip) {
		au := clip[i%len(clip)]
		sent = append(sent, au)
		pts := time.Duration(i) * frame
		if err := pub.WriteH264(au, pts); err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			if err := pub.WriteOpus(OpusTestPacket(uint16(2*i+k)), pts+time.Duration(k)*OpusFrameDuration); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}

	var got [][][]byte
	timeout := time.After(5 * time.Second)
collect:
	for {
		select {
		case au := <-v.AccessUnits():
			got = append(got, au.NALUs)
			if slices.EqualFunc(au.NALUs, sent[len(sent)-1], slices.Equal) && len(got) > len(clip) {
				break collect
			}
		case <-timeout:
			break collect
		}
	}
	if len(got) < len(clip) {
		t.Fatalf("viewer got %d AUs of %d sent", len(got), len(sent))
	}
	off := len(sent) - len(got)
	for i := range got {
		want := sent[off+i]
		if i == 0 && len(got[0]) < len(want) {
			// Forwarding may start inside the first access unit: what
			// arrives of it is its last NAL units, whole.
			want = want[len(want)-len(got[0]):]
		}
		if !slices.EqualFunc(got[i], want, slices.Equal) {
			t.Fatalf("received AU %d differs from sent AU %d", i, off+i)
		}
	}
	if st := v.Stats(); st.VideoGaps != 0 || st.AudioPackets == 0 {
		t.Errorf("stats %+v", st)
	}
	if pt, _, ok := v.FirstVideoNAL(); !ok || pt == 0 {
		t.Errorf("FirstVideoNAL: %d %v", pt, ok)
	}
	for range 3 {
		select {
		case op := <-v.OpusPackets():
			if _, ok := OpusTestIndex(op.Payload); !ok {
				t.Errorf("opus payload %x changed", op.Payload)
			}
		case <-timeout:
			t.Fatal("no opus")
		}
	}

	if err := v.SendPLI(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pub.KeyframeRequested():
	case <-ctx.Done():
		t.Fatal("PLI did not reach the publisher")
	}
	if pub.KeyframeRequests() < 1 {
		t.Error("KeyframeRequests not counted")
	}

	if err := pub.Close(); err != nil {
		t.Error(err)
	}
	if err := v.Close(); err != nil {
		t.Error(err)
	}
	select {
	case <-v.Done():
	default:
		t.Error("Done not closed after Close")
	}
}

func TestHTTPError(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such stream", http.StatusNotFound)
	}))
	defer srv.Close()
	_, err := View(t.Context(), srv.URL+"/whep/nope", ViewOptions{})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || he.Body != "no such stream" {
		t.Fatalf("err = %v, want HTTPError 404", err)
	}
	if StatusOf(err) != http.StatusNotFound {
		t.Errorf("StatusOf = %d", StatusOf(err))
	}
}
