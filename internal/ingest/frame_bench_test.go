package ingest

import (
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// discard is a PacketWriter that only counts.
type discard struct{ n int }

func (d *discard) Write(*hub.Packet) { d.n++ }

// BenchmarkFrameTrack measures one packetized access unit: ns and
// allocations per Write, and the packets it gives (pkts/op).
func BenchmarkFrameTrack(b *testing.B) {
	for _, c := range []struct {
		name  string
		codec media.Codec
		au    [][]byte
	}{
		{"H264-IDR-30KB", H264Codec(h264SPS, h264PPS), [][]byte{h264SPS, h264PPS, body(1, 30000, 0x65, 0x88)}},
		{"H264-IDR-30KB-params-added", H264Codec(h264SPS, h264PPS), [][]byte{body(1, 30000, 0x65, 0x88)}},
		{"H264-P-3KB", H264Codec(h264SPS, h264PPS), [][]byte{body(2, 3000, 0x41, 0x9a)}},
		{"H264-P-800B", H264Codec(h264SPS, h264PPS), [][]byte{body(2, 800, 0x41, 0x9a)}},
		{"H265-IDR-30KB", H265Codec(h265VPS, h265SPS, h265PPS), [][]byte{h265VPS, h265SPS, h265PPS, body(3, 30000, 0x26, 0x01)}},
		{"VP8-10KB", VP8Codec(), [][]byte{body(4, 10000, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a)}},
		{"AV1-10KB", AV1Codec(), [][]byte{{0x12, 0x00}, body(5, 10000, 0x32)}},
		{"AAC-371B", aacConfig(b), [][]byte{body(6, 371, 0x21)}},
		{"Opus-120B", OpusCodec(2), [][]byte{body(7, 120, 0xfc)}},
		{"G711-160B", G711Codec(true, 8000, 1), [][]byte{body(8, 160)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var w discard
			ft, err := NewFrameTrack(c.codec, 0, &w, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				pts := time.Duration(i) * 40 * time.Millisecond
				if err := ft.Write(pts, pts, c.au); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(w.n)/float64(i), "pkts/op")
		})
	}
}

// TestFrameTrackAllocations: in steady state a packet costs sluice
// nothing (the FrameTrack reuses its packet, the hub copies it into
// memory it reuses); what remains per packet is gortsplib's (an
// rtp.Packet for Opus, which passes the payload through).
func TestFrameTrackAllocations(t *testing.T) {
	var w discard
	ft, err := NewFrameTrack(OpusCodec(2), 0, &w, nil)
	if err != nil {
		t.Fatal(err)
	}
	au := [][]byte{body(7, 120, 0xfc)}
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		pts := time.Duration(i) * 20 * time.Millisecond
		if err := ft.Write(pts, pts, au); err != nil {
			t.Fatal(err)
		}
		i++
	})
	// 1 for gortsplib's rtp.Packet.
	if allocs > 1.05 {
		t.Errorf("%.3f allocations per Opus packet, want at most 1.05", allocs)
	}
}
