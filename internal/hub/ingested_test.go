package hub

import "testing"

func TestIngestedCountsWrites(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(true)                            // SPS, PPS, IDR, audio
	w.frame(false)                           // slice, audio
	s.Write(&Packet{Track: 7, Payload: idr}) // no such track: not taken
	packets, bytes := s.Ingested()
	want := len(sps) + len(pps) + len(idr) + len(slice) + 2*len(audio)
	if packets != 6 || bytes != uint64(want) {
		t.Fatalf("Ingested = %d packets, %d bytes; want 6, %d", packets, bytes, want)
	}
}
