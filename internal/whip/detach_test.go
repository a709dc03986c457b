package whip

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// sink keeps what a track writes.
type sink struct {
	mu   sync.Mutex
	pkts []hub.Packet
}

func (s *sink) Write(p *hub.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	s.pkts = append(s.pkts, c)
}
func (*sink) RequestTrackKeyframe(int) bool       { return true }
func (*sink) SetVideoInfo(int, media.VideoInfo)   {}
func (*sink) SetSenderReport(int, uint64, uint32) {}

// testClock steps by 1 ms more each call than the last (irregular
// arrival deltas).
type testClock struct {
	t    time.Time
	step time.Duration
}

func (c *testClock) now() time.Time {
	c.step += time.Millisecond
	c.t = c.t.Add(c.step)
	return c.t
}

// twccPacket is an RTP header with transport-wide sequence number seq in
// extension 5.
func twccPacket(ssrc uint32, seq, twseq uint16) *rtp.Header {
	h := &rtp.Header{Version: 2, SSRC: ssrc, SequenceNumber: seq, PayloadType: 96}
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], twseq)
	_ = h.SetExtension(5, b[:])
	return h
}

// TestTWCCFeedbackMatchesRecorder: the feedback a detached publisher gets
// is what pion's TWCC Recorder (the interceptor pion's path uses) builds
// for the same packets at the same arrival times: reordered, lost and
// duplicated transport sequence numbers, across a wrap, on two SSRCs.
func TestTWCCFeedbackMatchesRecorder(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := &testClock{t: start}
	s := &Session{rtcpSSRC: 7}
	s.det.twccID = 5
	s.det.twcc = twcc.NewRecorder(7)
	s.det.clock = clk.now
	s.det.epoch = start
	ref := twcc.NewRecorder(7)

	seqs := []uint16{65530, 65531, 65533, 65532, 65535, 0, 0, 1, 4, 3, 9, 10, 11}
	var wantPkts, gotPkts []rtcp.Packet
	refClock := &testClock{t: start}
	for i, twseq := range seqs {
		ssrc := uint32(100 + i%2)
		s.rtpDetached(twccPacket(ssrc, uint16(i), twseq), []byte{1, 2, 3})
		ref.Record(ssrc, twseq, refClock.now().Sub(start).Microseconds())
		if i == 6 { // a feedback interval passes
			gotPkts = append(gotPkts, s.det.twcc.BuildFeedbackPacket()...)
			wantPkts = append(wantPkts, ref.BuildFeedbackPacket()...)
		}
	}
	gotPkts = append(gotPkts, s.det.twcc.BuildFeedbackPacket()...)
	wantPkts = append(wantPkts, ref.BuildFeedbackPacket()...)
	if len(wantPkts) < 2 {
		t.Fatalf("reference built %d feedback packets, want at least 2", len(wantPkts))
	}
	got, err1 := rtcp.Marshal(gotPkts)
	want, err2 := rtcp.Marshal(wantPkts)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("feedback differs from pion's Recorder:\n got %v\nwant %v", gotPkts, wantPkts)
	}
	cc, ok := gotPkts[0].(*rtcp.TransportLayerCC)
	if !ok || cc.BaseSequenceNumber != 65530 || cc.SenderSSRC != 7 {
		t.Errorf("first feedback %+v, want base 65530 from SSRC 7", gotPkts[0])
	}
}

// TestRTXUnwrapped: a detached publisher's RTX packet (RFC 4588) reaches
// its track as the original packet (sequence number, SSRC, payload
// type, payload); media packets pass as they are; an RTX padding probe
// and packets of unknown SSRCs are dropped.
func TestRTXUnwrapped(t *testing.T) {
	out := &sink{}
	in := ingest.NewTrack(ingest.Options{}, ingest.TrackConfig{Codec: media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}, SSRC: 10}, out)
	defer in.Close()
	s := &Session{}
	s.det.clock = time.Now
	s.det.push = true
	s.det.tracks = []directTrack{{ssrc: 10, rtxSSRC: 11, pt: 111, in: in, stats: recvStats{clock: 48000}}}
	send := func(ssrc uint32, pt uint8, seq uint16, payload []byte) {
		s.rtpDetached(&rtp.Header{Version: 2, SSRC: ssrc, PayloadType: pt, SequenceNumber: seq, Timestamp: 960 * uint32(seq)}, payload)
	}
	send(10, 111, 1, []byte("a"))
	send(11, 112, 500, []byte{0, 2, 'b'}) // RTX of seq 2
	send(11, 112, 501, nil)               // padding probe
	send(12, 111, 3, []byte("x"))         // unknown SSRC
	send(10, 111, 3, []byte("c"))

	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.pkts) != 3 {
		t.Fatalf("track wrote %d packets, want 3: %+v", len(out.pkts), out.pkts)
	}
	for i, want := range []string{"a", "b", "c"} {
		p := out.pkts[i]
		if p.SequenceNumber != uint16(i+1) || string(p.Payload) != want || p.PayloadType != 111 {
			t.Errorf("packet %d: seq %d pt %d payload %q, want seq %d pt 111 %q", i, p.SequenceNumber, p.PayloadType, p.Payload, i+1, want)
		}
	}
	rr := s.receiverReport(time.Now())
	if rr == nil || len(rr.Reports) != 1 {
		t.Fatalf("receiver report %+v, want one block", rr)
	}
	if b := rr.Reports[0]; b.SSRC != 10 || b.LastSequenceNumber != 3 || b.TotalLost != 0 {
		t.Errorf("report block %+v, want SSRC 10, highest 3, none lost", b)
	}
}

// TestReceiverReportLoss: reception statistics by RFC 3550 A.3: the
// extended highest sequence number across a wrap, cumulative loss and
// the fraction lost since the previous report, LSR and DLSR.
func TestReceiverReportLoss(t *testing.T) {
	var r recvStats
	now := time.Unix(2000, 0)
	for _, seq := range []uint16{65534, 65535, 1, 2} { // 0 lost
		r.packet(seq, 0, now, false)
	}
	r.senderReport(0x1234_5678_9abc_def0, now)
	b, ok := r.report(1, now.Add(500*time.Millisecond))
	if !ok {
		t.Fatal("no report")
	}
	if b.LastSequenceNumber != 1<<16|2 || b.TotalLost != 1 || b.FractionLost != 256/5 {
		t.Errorf("report %+v, want highest 0x10002, 1 lost, fraction %d", b, 256/5)
	}
	if b.LastSenderReport != 0x5678_9abc || b.Delay != 65536/2 {
		t.Errorf("LSR %#x DLSR %d, want 0x56789abc and %d", b.LastSenderReport, b.Delay, 65536/2)
	}
	for _, seq := range []uint16{3, 4} {
		r.packet(seq, 0, now, false)
	}
	if b, _ = r.report(1, now); b.FractionLost != 0 || b.TotalLost != 1 {
		t.Errorf("second report %+v, want no new loss, 1 lost in all", b)
	}
}
