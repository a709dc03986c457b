// Package hubtest holds the fixtures that the tests of the hub's readers
// (hls, record, tap) share: the codecs, a publisher that ignores keyframe
// requests, the committed H264 clip, and a source that writes the clip and
// Opus test packets to a stream as a WebRTC publisher's ingest would.
package hubtest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// The codecs a Source publishes.
var (
	H264 = media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}
	Opus = media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
)

// NopPublisher is a hub publisher that ignores keyframe requests.
type NopPublisher struct{}

// RequestKeyframe does nothing.
func (NopPublisher) RequestKeyframe() {}

// ClipPath is the committed clip (3 s, 25 fps, constrained baseline
// 320x240, an IDR every 25 frames), relative to the module root;
// testdata/README.md says how it was made.
const ClipPath = "testdata/h264_cbp_320x240_25fps_3s.h264"

// LoadClip returns the clip's access units, AUDs dropped. It finds the
// module root from the test's working directory (its package directory).
func LoadClip(t testing.TB) [][][]byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("hubtest: no go.mod above the working directory")
		}
		dir = up
	}
	aus, err := client.ReadAccessUnitsFile(filepath.Join(dir, ClipPath))
	if err != nil {
		t.Fatal(err)
	}
	return aus
}

// Source publishes the clip (H264, one packet per NAL unit) and Opus test
// packets (client.OpusTestPacket) to a hub stream. Video frame n has the
// RTP timestamp VTS0 + n×3600 (40 ms), Opus packet n ATS0 + n×960 (20 ms).
type Source struct {
	Writer     *hub.Writer // the publishing side
	Stream     *hub.Stream // what readers see
	V, A       int         // track indexes; -1 when absent
	VSeq, ASeq uint16      // sequence numbers last written: the next packet has one more
	VTS0, ATS0 uint32      // RTP timestamps of video frame 0 and Opus packet 0
	clip       [][][]byte
}

// NewSource publishes stream name on h with a video track, an audio track
// or both (video first), clocks and sequence numbers from 0. The stream
// is the caller's to end.
func NewSource(t testing.TB, h *hub.Hub, name string, video, audio bool) *Source {
	t.Helper()
	var codecs []media.Codec
	if video {
		codecs = append(codecs, H264)
	}
	if audio {
		codecs = append(codecs, Opus)
	}
	st, err := h.Publish(name, NopPublisher{}, codecs)
	if err != nil {
		t.Fatal(err)
	}
	s := &Source{Writer: st, Stream: st.Stream(), V: -1, A: -1, clip: LoadClip(t)}
	if video {
		s.V = st.AddTrack(H264)
	}
	if audio {
		s.A = st.AddTrack(Opus)
	}
	return s
}

// Video writes access unit n (of the looped clip) at n×40 ms.
func (s *Source) Video(n int) {
	nalus := s.clip[n%len(s.clip)]
	for i, nalu := range nalus {
		s.VSeq++
		s.Writer.Write(&hub.Packet{Track: s.V, Marker: i == len(nalus)-1, SequenceNumber: s.VSeq,
			Timestamp: s.VTS0 + uint32(n)*3600, Payload: nalu})
	}
}

// Audio writes Opus packet n at n×20 ms.
func (s *Source) Audio(n int) {
	s.ASeq++
	s.Writer.Write(&hub.Packet{Track: s.A, SequenceNumber: s.ASeq, Timestamp: s.ATS0 + uint32(n)*960,
		Payload: client.OpusTestPacket(uint16(n))})
}

// Feed writes packets as a publisher sends them in real time: for each i
// from from to n, audio packet i, and for every even i video frame i/2.
func (s *Source) Feed(from, n int) {
	for i := from; i < n; i++ {
		if s.A >= 0 {
			s.Audio(i)
		}
		if s.V >= 0 && i%2 == 0 {
			s.Video(i / 2)
		}
	}
}

// Loop publishes stream name on h (see NewSource) and feeds it, looped,
// at ten times real time (20 ms of media every 2 ms: a video frame every
// 4 ms) until stop, which waits for the feed. The writer returned is the
// caller's to end.
func Loop(t testing.TB, h *hub.Hub, name string, video, audio bool) (w *hub.Writer, stop func()) {
	t.Helper()
	s := NewSource(t, h, name, video, audio)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			s.Feed(i, i+1)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return s.Writer, func() { close(done); wg.Wait() }
}
