package media

import (
	"testing"
	"time"
)

func TestNTPRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 12, 0, 0, 999_999_999, time.UTC),
		time.Date(2036, 2, 7, 6, 28, 15, 500_000_000, time.UTC), // just before the NTP era wraps
	} {
		got := NTPTime(ToNTP(tm))
		if d := got.Sub(tm); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("%v: round trip gives %v", tm, got)
		}
	}
	// RFC 3550 §4: 0x83AA7E80 seconds is 1970-01-01.
	if got := NTPTime(0x83AA7E80 << 32); !got.Equal(time.Unix(0, 0)) {
		t.Errorf("Unix epoch: %v", got)
	}
}

func TestSenderReportWallClock(t *testing.T) {
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	sr := SenderReport{NTP: base, RTP: 4294967000}
	for _, c := range []struct {
		ts   uint32
		want time.Duration
	}{
		{4294967000, 0},
		{4294967000 + 48000 - 1<<32, time.Second}, // after the 32-bit wrap
		{4294967000 - 4800, -100 * time.Millisecond},
	} {
		if got := sr.WallClock(c.ts, 48000).Sub(base); got != c.want {
			t.Errorf("ts %d: %v, want %v", c.ts, got, c.want)
		}
	}
	if !sr.WallClock(1, 0).Equal(base) {
		t.Error("clock rate 0")
	}
}

func TestFramePTSAndAnnexB(t *testing.T) {
	f := &Frame{Time: 45000, ClockRate: 90000, NALUs: [][]byte{{0x67, 1}, {0x65, 2, 3}}}
	if f.PTS() != 500*time.Millisecond {
		t.Errorf("PTS %v", f.PTS())
	}
	want := []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x65, 2, 3}
	if got := f.AnnexB(); string(got) != string(want) {
		t.Errorf("AnnexB %x", got)
	}
	if (&Frame{}).PTS() != 0 {
		t.Error("PTS without clock rate")
	}
}
