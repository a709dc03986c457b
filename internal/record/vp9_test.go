package record

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/sluice-media/sluice/internal/tap"
)

// vp9Units reads testdata's VP9 clip into video units.
func vp9Units(t *testing.T) (*tap.Track, []*tap.Unit) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vp9_profile0_320x240_25fps_3s.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	video := &tap.Track{Codec: tap.VP9, ClockRate: 90000}
	var us []*tap.Unit
	for i := 0; ; i++ {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, &tap.Unit{Track: video, PTS: int64(i) * 3600, Key: i%25 == 0, Payload: f})
	}
	return video, us
}

// TestSegmentVP9: the init block's vpcC holds what the first key frame's
// header says, every frame is a sample (key frames sync samples), and a
// key frame of another size counts as changed parameters.
func TestSegmentVP9(t *testing.T) {
	video, us := vp9Units(t)
	out := &memSink{}
	seg, err := newSegment(out, "vp9.mp4", video, nil, us[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Key && seg.paramsChanged(u) {
			t.Errorf("unit at %d: parameters changed within the clip", u.PTS)
		}
		if err := seg.write(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := seg.close(); err != nil {
		t.Fatal(err)
	}
	init, parts := parse(t, out.buf.Bytes())
	want := &codecs.VP9{Width: 320, Height: 240, Profile: 0, BitDepth: 8, ChromaSubsampling: 1}
	if len(init.Tracks) != 1 || !reflect.DeepEqual(init.Tracks[0].Codec, want) {
		t.Fatalf("init track %+v, want %+v", init.Tracks[0].Codec, want)
	}
	n := 0
	for _, p := range parts {
		for _, pt := range p.Tracks {
			for _, s := range pt.Samples {
				if s.IsNonSyncSample == (n%25 == 0) {
					t.Errorf("sample %d: non-sync %v", n, s.IsNonSyncSample)
				}
				if !bytes.Equal(s.Payload, us[n].Payload) {
					t.Errorf("sample %d differs from the frame", n)
				}
				n++
			}
		}
	}
	if n != len(us) {
		t.Errorf("%d samples for %d frames", n, len(us))
	}
	// Chromium's 1920x804 key frame header.
	big := []byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x77, 0xf0, 0x32, 0x34, 0x30, 0x38, 0x24, 0x1c, 0x19, 0x40, 0x18, 0x03, 0x40, 0x5f, 0xb4}
	if !seg.paramsChanged(&tap.Unit{Track: video, Key: true, Payload: big}) {
		t.Error("a 1920x804 key frame is not a change from 320x240")
	}
	if _, err := newSegment(&memSink{}, "bad.mp4", video, nil, &tap.Unit{Track: video, Key: true, Payload: []byte{0x86, 0}}); err == nil {
		t.Error("a segment from an inter frame")
	}
}
