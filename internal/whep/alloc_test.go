package whep

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

type nopPublisher struct{}

func (nopPublisher) RequestKeyframe() {}

// TestPumpAllocatesNothing: forwarding a packet from the ring to a viewer
// (cursor, header rewrite, write, counters) allocates nothing. The packets
// are made before, as the publisher's side would.
func TestPumpAllocatesNothing(t *testing.T) {
	opus := media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	h := hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: time.Second, MaxViewersPerStream: 1})
	stW, err := h.Publish("allocs", nopPublisher{}, []media.Codec{opus})
	if err != nil {
		t.Fatal(err)
	}
	st := stW.Stream()
	stW.AddTrack(opus)
	cur, err := st.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	ot, w := newBoundTrack(false)
	ot.codec = opus
	s := &Session{stream: st, cursor: cur, tracks: []*outTrack{ot}, reportedAt: time.Now().Add(time.Hour)}

	const runs = 200
	pkts := make([]hub.Packet, runs+1)
	payload := make([]byte, 100)
	for i := range pkts {
		pkts[i] = hub.Packet{Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960, Payload: payload}
	}
	w.pkts = make([]rtp.Packet, 0, 2*len(pkts))
	n := 0
	allocs := testing.AllocsPerRun(runs, func() {
		stW.Write(&pkts[n])
		n++
		s.pump(nil)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per forwarded packet, want 0", allocs)
	}
	if len(w.pkts) != n {
		t.Errorf("%d packets forwarded of %d written", len(w.pkts), n)
	}
}
