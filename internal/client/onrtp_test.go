package client

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// TestViewOnRTP checks that ViewOptions.OnRTP sees every packet the viewer
// counts, on both tracks, with CountOnly as the bench tool uses it.
func TestViewOnRTP(t *testing.T) {
	defer goleak.VerifyNone(t)
	clip := loadClip(t)
	st := newStub(t)
	srv := httptest.NewServer(st)
	defer srv.Close()
	defer st.close()

	pub, err := Publish(t.Context(), srv.URL+"/whip/s", PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var video, audio atomic.Uint64
	v, err := View(t.Context(), srv.URL+"/whep/s", ViewOptions{CountOnly: true, OnRTP: func(k webrtc.RTPCodecType, p *rtp.Packet) {
		if k == webrtc.RTPCodecTypeVideo {
			video.Add(1)
		} else {
			audio.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, au := range clip[:25] {
		pts := time.Duration(i) * 40 * time.Millisecond
		if err := pub.WriteH264(au, pts); err != nil {
			t.Fatal(err)
		}
		if err := pub.WriteOpus(OpusTestPacket(uint16(i)), pts); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for audio.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := v.Close(); err != nil {
		t.Error(err)
	}
	s := v.Stats()
	if video.Load() == 0 || video.Load() != s.VideoPackets || audio.Load() != s.AudioPackets {
		t.Errorf("OnRTP saw %d video and %d audio packets; stats %+v", video.Load(), audio.Load(), s)
	}
}
