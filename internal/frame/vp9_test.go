package frame

import (
	"reflect"
	"testing"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// A VP9 key frame's uncompressed header (Chromium, 1920x804, profile 0)
// and the first byte of an inter frame's.
var (
	vp9Key   = []byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x77, 0xf0, 0x32, 0x34, 0x30, 0x38, 0x24, 0x1c, 0x19, 0x40, 0x18, 0x03, 0x40, 0x5f, 0xb4}
	vp9Inter = []byte{0x86, 0x00, 0x11}
)

// RFC 9628 §4.2 descriptor first bytes: B (start of frame), E (end of
// frame), P (inter-picture predicted).
const (
	vp9B = 0x08
	vp9E = 0x04
	vp9P = 0x40
)

// TestVP9: a key frame split over two packets, an inter frame, an upper
// spatial layer of that picture (left out), a gap that drops the next
// frame, and output resuming at the next key frame.
func TestVP9(t *testing.T) {
	pkt := func(seq uint16, ts uint32, marker bool, desc byte, payload ...byte) *hub.Packet {
		return &hub.Packet{SequenceNumber: seq, Timestamp: ts, Marker: marker, Payload: append([]byte{desc}, payload...)}
	}
	d := NewVP9()
	type out struct {
		key   bool
		ts    uint32
		frame []byte
	}
	var got []out
	for _, p := range []*hub.Packet{
		pkt(9, 3600, true, vp9P|vp9E, 0x01),              // the end of a frame never started: dropped
		pkt(10, 7200, true, vp9P|vp9B|vp9E, vp9Inter...), // an inter frame before any key frame: dropped
		pkt(11, 9000, false, vp9B, vp9Key[:10]...),
		pkt(12, 9000, true, vp9E, vp9Key[10:]...),
		pkt(13, 12600, false, vp9P|vp9B|vp9E, vp9Inter...),
		pkt(14, 12600, true, vp9P|vp9B|vp9E, 0x86, 0x22),  // spatial layer 1 of the same picture
		pkt(16, 16200, true, vp9P|vp9B|vp9E, vp9Inter...), // after a gap: dropped
		pkt(17, 19800, true, vp9B|vp9E, vp9Key...),
	} {
		if f, ok := d.Push(p); ok {
			got = append(got, out{f.Keyframe, f.RTPTimestamp, f.Payload})
		}
	}
	want := []out{
		{true, 9000, vp9Key},
		{false, 12600, vp9Inter},
		{true, 19800, vp9Key},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	info, ok := d.VideoInfo()
	if want := (media.VideoInfo{Width: 1920, Height: 804, Profile: "0"}); !ok || info != want {
		t.Errorf("video info %+v %v, want %+v", info, ok, want)
	}
}

// TestVP9ShowExisting: a frame that shows an existing frame (no frame
// type in its header) is not taken for a key frame.
func TestVP9ShowExisting(t *testing.T) {
	d := NewVP9()
	// frame_marker 10, profile 0 0, show_existing_frame 1, index 000.
	if f, ok := d.Push(&hub.Packet{SequenceNumber: 1, Timestamp: 1, Marker: true, Payload: []byte{vp9B | vp9E, 0x88}}); ok {
		t.Errorf("a show_existing_frame frame came out as %+v", f)
	}
}

// FuzzVP9 feeds arbitrary payloads to the depacketizer and the info
// sniffer: no panic, every frame out has a payload, a key frame at least
// a header's bytes, video info a size.
func FuzzVP9(f *testing.F) {
	f.Add(append([]byte{vp9B}, vp9Key[:10]...), append([]byte{vp9E}, vp9Key[10:]...))
	f.Add(append([]byte{vp9B | vp9E}, vp9Key...), append([]byte{vp9P | vp9B | vp9E}, vp9Inter...))
	f.Add([]byte{0xff, 0xff, 0xff, 0x08}, []byte{0x0a, 0x88})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		d := NewVP9()
		s := NewInfoSniffer(media.Codec{MimeType: "video/VP9"})
		for i, p := range [][]byte{a, b, a, b} {
			if info, ok := s.Sniff(p); ok && (info.Width < 1 || info.Height < 1) {
				t.Errorf("video info %+v from %x", info, p)
			}
			fr, ok := d.Push(&hub.Packet{SequenceNumber: uint16(i), Timestamp: uint32(i / 2), Marker: i%2 == 1, Payload: p})
			if !ok {
				continue
			}
			if len(fr.Payload) == 0 {
				t.Errorf("an empty frame from %x", p)
			}
			if fr.Keyframe && len(fr.Payload) < 4 {
				t.Errorf("a key frame of %d bytes", len(fr.Payload))
			}
		}
	})
}

// TestInfoSnifferVP9: the first packet of a key frame gives its size and
// profile; an inter frame's and a continuation packet give nothing.
func TestInfoSnifferVP9(t *testing.T) {
	s := NewInfoSniffer(media.Codec{MimeType: "video/VP9"})
	for _, p := range [][]byte{append([]byte{vp9P | vp9B | vp9E}, vp9Inter...), append([]byte{vp9E}, vp9Key...)} {
		if info, ok := s.Sniff(p); ok {
			t.Errorf("Sniff(% x) = %+v", p, info)
		}
	}
	info, ok := s.Sniff(append([]byte{vp9B}, vp9Key[:12]...))
	if want := (media.VideoInfo{Width: 1920, Height: 804, Profile: "0"}); !ok || info != want {
		t.Errorf("Sniff = %+v %v, want %+v", info, ok, want)
	}
	if _, ok := s.Sniff(append([]byte{vp9B | vp9E}, vp9Key...)); ok {
		t.Error("the same key frame header again: reported again")
	}
}
