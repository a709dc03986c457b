package tap

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// TestReaderAACPassthrough: a stream that carries AAC itself (an RTMP or
// SRT publisher's, packetized by the frame writer) gives AudioAAC its
// access units unchanged, with the track's config and times, without a
// transcoder (and in preference to an Opus track beside it).
func TestReaderAACPassthrough(t *testing.T) {
	asc := mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}
	cfg, err := asc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	aac, err := ingest.AACCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opus := ingest.OpusCodec(2)
	h := hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: time.Second})
	stW, err := h.Publish("aac", hubtest.NopPublisher{}, []media.Codec{opus, aac})
	if err != nil {
		t.Fatal(err)
	}
	st := stW.Stream()
	defer stW.End()
	stW.AddTrack(opus)
	ft, err := ingest.NewFrameTrack(aac, stW.AddTrack(aac), stW, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), st, Options{Audio: AudioAAC})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := r.Audio()
	if a == nil || a.Codec != AAC || a.AAC.SampleRate != 44100 || a.AAC.ChannelConfig != 2 || a.Index != 1 {
		t.Fatalf("audio track %+v, want the stream's AAC (track 1, 44.1 kHz stereo)", a)
	}
	if r.tl.aDerived {
		t.Fatal("a derived track was read for a stream with AAC")
	}
	const n = 20
	aus := make([][]byte, n)
	for i := range aus {
		aus[i] = bytes.Repeat([]byte{byte(i + 1)}, 100+i)
		pts := time.Duration(i) * 1024 * time.Second / 44100
		if err := ft.Write(pts, pts, [][]byte{aus[i]}); err != nil {
			t.Fatal(err)
		}
	}
	stW.End()
	got := units(t, r, n)
	if len(got) != n {
		t.Fatalf("%d units, want %d", len(got), n)
	}
	for i, u := range got {
		if !bytes.Equal(u.Payload, aus[i]) {
			t.Errorf("unit %d: payload %x, want %x", i, u.Payload[:4], aus[i][:4])
		}
		// Some slack: the durations given to the frame writer are
		// truncated to nanoseconds, its RTP times to samples, and the
		// Reader's timeline has a rate of its own.
		want := time.Duration(i) * 1024 * time.Second / 44100
		if d := u.Time() - want; d < -100*time.Microsecond || d > 100*time.Microsecond {
			t.Errorf("unit %d at %v, want %v", i, u.Time(), want)
		}
	}
}
