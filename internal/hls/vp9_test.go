package hls

import (
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/tap"
)

// TestMuxerVP9BadFrames: frames gohlslib cannot place — one that shows an
// existing frame (its header has no frame type; gohlslib would take it
// for a key frame and read a colour config it lacks), one whose header
// does not parse — are left out without panic or error, before and after
// a key frame.
func TestMuxerVP9BadFrames(t *testing.T) {
	cfg := Config{}
	cfg.defaults()
	video := &tap.Track{Codec: tap.VP9, ClockRate: 90000}
	mx, err := newMuxer(cfg, video, nil, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer mx.close()
	key := []byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x77, 0xf0, 0x32, 0x34, 0x30, 0x38, 0x24, 0x1c, 0x19, 0x40, 0x18, 0x03, 0x40, 0x5f, 0xb4}
	showExisting := []byte{0x88}
	wall := time.Now()
	for i, f := range []struct {
		key     bool
		payload []byte
	}{{false, showExisting}, {false, []byte{0x00}}, {true, key}, {false, showExisting}, {false, []byte{}}, {false, []byte{0x86, 0x00}}} {
		u := &tap.Unit{Track: video, PTS: int64(i) * 3600, Key: f.key, Payload: f.payload}
		u.Wall = wall.Add(u.Time())
		if err := mx.write(u); err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
	if n := mx.errs.Load(); n != 0 {
		t.Errorf("%d encode errors", n)
	}
}
