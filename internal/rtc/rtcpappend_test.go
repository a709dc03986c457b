package rtc

import (
	"bytes"
	"testing"

	"github.com/pion/rtcp"
)

func TestAppendRTCPMatchesPion(t *testing.T) {
	sr := func(ssrc uint32) *rtcp.SenderReport {
		return &rtcp.SenderReport{SSRC: ssrc, NTPTime: 0xe1f2a3b4c5d6e7f8, RTPTime: 0x89abcdef, PacketCount: 1234567, OctetCount: 0xfedcba98}
	}
	withBlock := sr(3)
	withBlock.Reports = []rtcp.ReceptionReport{{SSRC: 9, FractionLost: 2, TotalLost: 3, LastSequenceNumber: 4, Jitter: 5}}
	withExt := sr(4)
	withExt.ProfileExtensions = []byte{1, 2, 3, 4}
	for _, pkts := range [][]rtcp.Packet{
		{sr(1)},
		{sr(1), sr(2)},
		{sr(1), &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}, withBlock, withExt},
		{&rtcp.SenderReport{}},
	} {
		want, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendRTCP([]byte{0xaa}, pkts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[1:], want) || got[0] != 0xaa {
			t.Errorf("%v:\ngot  %x\nwant %x", pkts, got[1:], want)
		}
	}
}

func TestAppendSenderReportsAllocatesNothing(t *testing.T) {
	pkts := []rtcp.Packet{&rtcp.SenderReport{SSRC: 1}, &rtcp.SenderReport{SSRC: 2}}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = appendRTCP(buf[:0], pkts)
	}); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
