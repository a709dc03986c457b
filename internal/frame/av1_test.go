package frame

import (
	"reflect"
	"testing"

	"github.com/sluice-media/sluice/internal/hub"
)

// TestAV1: a key temporal unit (sequence header plus a frame OBU split over
// two packets), a following unit, then a gap: the unit after the gap is
// dropped and output resumes at the next sequence header.
func TestAV1(t *testing.T) {
	pkt := func(seq uint16, ts uint32, marker bool, payload ...byte) *hub.Packet {
		return &hub.Packet{SequenceNumber: seq, Timestamp: ts, Marker: marker, Payload: payload}
	}
	d := NewAV1()
	type out struct {
		key  bool
		ts   uint32
		obus [][]byte
	}
	var got []out
	for _, p := range []*hub.Packet{
		pkt(10, 9000, false, 0x88, 0x30, 0x07), // Z=1 before any start: dropped
		// Y=1 W=2 N=1: a sequence header with its length, then the start of a frame OBU.
		pkt(11, 90000, false, 0x68, 0x03, 0x08, 0xaa, 0xbb, 0x30, 0x01, 0x02),
		pkt(12, 90000, true, 0x90, 0x03, 0x04), // Z=1 W=1: the frame's rest
		pkt(13, 93600, true, 0x10, 0x30, 0x05),
		pkt(15, 97200, true, 0x10, 0x30, 0x06), // after a gap: dropped
		pkt(16, 100800, true, 0x18, 0x08, 0xcc),
	} {
		if f, ok := d.Push(p); ok {
			got = append(got, out{f.Keyframe, f.RTPTimestamp, f.NALUs})
		}
	}
	want := []out{
		{true, 90000, [][]byte{{0x08, 0xaa, 0xbb}, {0x30, 0x01, 0x02, 0x03, 0x04}}},
		{false, 93600, [][]byte{{0x30, 0x05}}},
		{true, 100800, [][]byte{{0x08, 0xcc}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// FuzzAV1 feeds arbitrary payloads: no panic, and every frame out has
// OBUs.
func FuzzAV1(f *testing.F) {
	f.Add([]byte{0x68, 0x03, 0x08, 0xaa, 0xbb, 0x30, 0x01, 0x02}, []byte{0x90, 0x03, 0x04})
	f.Add([]byte{0x18, 0x08, 0xcc}, []byte{0x00, 0x80})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		d := NewAV1()
		for i, p := range [][]byte{a, b, a} {
			if fr, ok := d.Push(&hub.Packet{SequenceNumber: uint16(i), Timestamp: uint32(i), Marker: i != 0, Payload: p}); ok && len(fr.NALUs) == 0 {
				t.Errorf("a frame without OBUs from %x", p)
			}
		}
	})
}
