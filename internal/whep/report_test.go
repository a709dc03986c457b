package whep

import (
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

type srSource map[int]media.SenderReport

func (s srSource) SenderReport(track int) (media.SenderReport, bool) {
	sr, ok := s[track]
	return sr, ok
}

func TestSenderReport(t *testing.T) {
	ot, _ := newBoundTrack(false)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if sr := ot.senderReport(srSource{}, now); sr != nil {
		t.Fatalf("report before any packet: %+v", sr)
	}
	p := &hub.Packet{SequenceNumber: 10, Timestamp: 90000, Payload: make([]byte, 100)}
	if err := ot.write(p, false, now, nil); err != nil {
		t.Fatal(err)
	}
	p2 := &hub.Packet{SequenceNumber: 11, Timestamp: 93000, Payload: make([]byte, 50)}
	if err := ot.write(p2, false, now.Add(33*time.Millisecond), nil); err != nil {
		t.Fatal(err)
	}
	delta := ot.tsDelta.Load()

	// Without a publisher report: extrapolated from the newest packet.
	at := now.Add(533 * time.Millisecond) // 500 ms after the second packet
	sr := ot.senderReport(srSource{}, at)
	if sr.SSRC != 1111 || sr.PacketCount != 2 || sr.OctetCount != 150 {
		t.Errorf("ssrc/packets/octets = %d/%d/%d, want 1111/2/150", sr.SSRC, sr.PacketCount, sr.OctetCount)
	}
	if want := 93000 + delta + 45000; sr.RTPTime != want {
		t.Errorf("RTP time without publisher report = %d, want %d", sr.RTPTime, want)
	}
	if got := media.NTPTime(sr.NTPTime); got.Sub(at).Abs() > time.Microsecond {
		t.Errorf("NTP time = %v, want %v (this server's clock)", got, at)
	}

	// With one: the publisher's mapping, in this viewer's numbering, even
	// when the publisher's NTP clock is a century off.
	for _, pubNTP := range []time.Time{now, now.Add(-100 * 365 * 24 * time.Hour), now.Add(time.Hour)} {
		src := srSource{0: {NTP: pubNTP, RTP: 180000}}
		sr = ot.senderReport(src, at)
		want := 180000 + delta + ticks(at.Sub(pubNTP), 90000)
		if sr.RTPTime != want {
			t.Errorf("publisher NTP %v: RTP time = %d, want %d", pubNTP, sr.RTPTime, want)
		}
	}
	if got, want := ticks(1500*time.Millisecond, 90000), uint32(135000); got != want {
		t.Errorf("ticks(1.5 s) = %d, want %d", got, want)
	}
	if got, want := ticks(-time.Second, 48000), uint32(1<<32-48000); got != want {
		t.Errorf("ticks(-1 s) = %d, want %d", got, want)
	}
}
