package whep

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/sluice-media/sluice/internal/hub"
)

// fakeLayers is a stream with three layers: tracks 0 (high), 1 (low) and
// 2 (mid), as AddLayer numbers them in arrival order.
type fakeLayers struct{ rates [3]int64 }

func (f *fakeLayers) Layers(track int) []hub.Layer {
	if track != 0 {
		return nil
	}
	return []hub.Layer{{Track: 1, RID: "l", Bitrate: f.rates[1]}, {Track: 2, RID: "m", Bitrate: f.rates[2]}, {Track: 0, RID: "h", Bitrate: f.rates[0]}}
}

func decided(t *testing.T, lc *layerControl) (int, bool) {
	t.Helper()
	track, keyOnly, ok := unpack(lc.decision.Load())
	if !ok {
		t.Fatal("no decision")
	}
	return track, keyOnly
}

// rr is a receiver report on the video SSRC with a fraction lost.
func rr(loss float64) []rtcp.Packet {
	return []rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 7, FractionLost: uint8(loss * 256)}}}}
}

// TestLayerSelection walks the control through a link that carries the
// low layer only, then anything: it settles on low, is held off mid for a
// growing back-off, then climbs to high once the loss stops.
func TestLayerSelection(t *testing.T) {
	src := &fakeLayers{rates: [3]int64{1_600_000, 150_000, 600_000}}
	lc := newLayerControl(src, 0)
	now := time.Unix(100, 0)
	var sent uint64
	// step sends at rate bps for d, then reports loss.
	step := func(rate float64, d time.Duration, loss float64) {
		now = now.Add(d)
		sent += uint64(rate * d.Seconds() / 8)
		lc.feedback(rr(loss), twccCount{}, 7, sent, now)
	}
	step(0, 0, 0)
	if track, _ := decided(t, lc); track != 1 {
		t.Fatalf("start: track %d, want low (1) with the start estimate", track)
	}
	// No loss on low: the estimate grows; mid is tried.
	for range 3 {
		step(150_000, time.Second, 0)
	}
	if track, _ := decided(t, lc); track != 2 {
		t.Fatalf("after 3 s without loss: track %d, want mid (2)", track)
	}
	// Mid does not fit: 40% loss sends it back to low.
	step(600_000, time.Second, 0.4)
	if track, key := decided(t, lc); track != 1 || key {
		t.Fatalf("after loss on mid: track %d keyOnly %v, want low", track, key)
	}
	firstBlock := lc.blocked[2].Sub(now)
	if firstBlock != backoffMin {
		t.Fatalf("back-off %v, want %v", firstBlock, backoffMin)
	}
	// The estimate has grown enough within a second, but mid is blocked.
	step(150_000, time.Second, 0)
	if track, _ := decided(t, lc); track != 1 {
		t.Fatalf("during the back-off: track %d, want low", track)
	}
	for range 2 {
		step(150_000, time.Second, 0)
	}
	if track, _ := decided(t, lc); track != 2 {
		t.Fatalf("after the back-off: track %d, want mid again", track)
	}
	step(600_000, time.Second, 0.3)
	if track, _ := decided(t, lc); track != 1 {
		t.Fatalf("second loss on mid: track %d, want low", track)
	}
	if got := lc.blocked[2].Sub(now); got != 2*backoffMin {
		t.Fatalf("second back-off %v, want %v (doubled)", got, 2*backoffMin)
	}
	// The limit is lifted: no more loss, up to high.
	for range 10 {
		step(600_000, time.Second, 0)
	}
	if track, _ := decided(t, lc); track != 0 {
		t.Fatalf("without loss: track %d, want high (0)", track)
	}
	// Heavy loss everywhere, even low does not fit: keyframes only.
	step(1_600_000, time.Second, 0.5)
	step(150_000, time.Second, 0.9)
	step(100_000, time.Second, 0.9)
	if track, key := decided(t, lc); track != 1 || !key {
		t.Fatalf("starved: track %d keyOnly %v, want low, keyframes only", track, key)
	}
}

func TestLayerPin(t *testing.T) {
	src := &fakeLayers{rates: [3]int64{1_600_000, 150_000, 600_000}}
	lc := newLayerControl(src, 0)
	now := time.Unix(100, 0)
	for name, want := range map[string]int{"high": 0, "mid": 2, "low": 1, "m": 2, "h": 0} {
		if err := lc.setPin(name, now); err != nil {
			t.Fatalf("pin %q: %v", name, err)
		}
		if track, _ := decided(t, lc); track != want {
			t.Fatalf("pin %q: track %d, want %d", name, track, want)
		}
	}
	// A pinned layer holds whatever the loss.
	lc.setPin("high", now)
	lc.feedback(rr(0.5), twccCount{}, 7, 1000, now.Add(time.Second))
	if track, _ := decided(t, lc); track != 0 {
		t.Fatalf("pinned high under loss: track %d", track)
	}
	for _, bad := range []string{"x", "q", "a b", "../etc"} {
		if err := lc.setPin(bad, now); !errors.Is(err, ErrNoLayer) {
			t.Fatalf("pin %q: %v, want ErrNoLayer", bad, err)
		}
	}
	if err := lc.setPin("auto", now); err != nil || lc.pin != "" {
		t.Fatalf("auto: %v, pin %q", err, lc.pin)
	}
	single := newLayerControl(src, -1)
	if err := single.setPin("h", now); !errors.Is(err, ErrNoLayer) {
		t.Fatalf("RID pin without simulcast: %v", err)
	}
}

// TestKeyframesOnlyWithoutSimulcast: a viewer of a stream without
// simulcast whose link loses a lot gets keyframes only, and every frame
// again once the loss is gone and the back-off has passed.
func TestKeyframesOnlyWithoutSimulcast(t *testing.T) {
	lc := newLayerControl(&fakeLayers{}, -1)
	now := time.Unix(100, 0)
	var sent uint64
	step := func(rate float64, loss float64) {
		now = now.Add(time.Second)
		sent += uint64(rate / 8)
		lc.feedback(rr(loss), twccCount{}, 7, sent, now)
	}
	step(0, 0)
	step(2_000_000, 0)
	if _, key := decided(t, lc); key {
		t.Fatal("keyframes only without loss")
	}
	step(2_000_000, 0.05)
	if _, key := decided(t, lc); key {
		t.Fatal("keyframes only at 5% loss")
	}
	step(2_000_000, 0.4)
	if _, key := decided(t, lc); key {
		t.Fatal("keyframes only after one report of loss")
	}
	step(2_000_000, 0.4)
	if _, key := decided(t, lc); !key {
		t.Fatal("every frame after two reports of 40% loss")
	}
	step(100_000, 0)
	if _, key := decided(t, lc); !key {
		t.Fatal("left keyframes-only within the back-off")
	}
	for range 4 {
		step(100_000, 0)
	}
	if _, key := decided(t, lc); key {
		t.Fatal("still keyframes only after the loss is gone")
	}
}

func TestTWCCLoss(t *testing.T) {
	p := &rtcp.TransportLayerCC{
		PacketStatusCount: 19,
		PacketChunks: []rtcp.PacketStatusChunk{
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 10},
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 3},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: []uint16{
				rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived,
				rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedSmallDelta,
				rtcp.TypeTCCPacketNotReceived, // past the status count: ignored
			}},
		},
	}
	if lost, total := twccLoss(p); lost != 5 || total != 19 {
		t.Fatalf("twccLoss = %d/%d, want 5/19", lost, total)
	}
	// The estimator judges TWCC loss over a window, and REMB caps it.
	e := newEstimator()
	now := time.Unix(1, 0)
	e.sent(0, now)
	if e.rtcp([]rtcp.Packet{p}, 7, 0, now) {
		t.Fatal("one feedback of 19 packets within no time changed the estimate")
	}
	// 100 kB in the second: 800 kbit/s sent, 26% lost.
	if !e.rtcp([]rtcp.Packet{p}, 7, 100_000, now.Add(time.Second)) || e.est != 800_000*(1-5.0/19/2) {
		t.Fatalf("26%% TWCC loss at 800 kbit/s: estimate %v, want %v", e.est, 800_000*(1-5.0/19/2))
	}
	e.rtcp([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 50_000}}, 7, 0, now)
	if got := e.estimate(now.Add(time.Second)); got != 50_000 {
		t.Fatalf("estimate under REMB 50k: %v", got)
	}
	if got := e.estimate(now.Add(rembStale + time.Second)); got == 50_000 {
		t.Fatal("a stale REMB still caps the estimate")
	}
}

// TestLayerSwitchContinuity: across a switch between layers (restart),
// the viewer's sequence numbers go on by one and its timestamps never go
// back, even when the new layer's keyframe carries the instant of the
// last frame sent; NACKs after the switch are answered from the new
// layer's track.
func TestLayerSwitchContinuity(t *testing.T) {
	ot, w := newBoundTrack(false)
	write := func(track int, seq uint16, ts uint32, restart bool) {
		if err := ot.write(&hub.Packet{Track: track, SequenceNumber: seq, Timestamp: ts, Payload: []byte{1}}, restart, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 500, 90000, true)
	write(1, 501, 93000, false)
	write(1, 502, 96000, false)
	// Switch to track 0, numbered unlike track 1, on the same timeline,
	// whose keyframe has the timestamp of the last frame sent.
	write(0, 40000, 96000, true)
	write(0, 40001, 99000, false)
	got := w.pkts
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("sequence numbers %d then %d", got[i-1].SequenceNumber, got[i].SequenceNumber)
		}
		if int32(got[i].Timestamp-got[i-1].Timestamp) <= 0 && i == 3 {
			t.Fatalf("timestamp did not move forward at the switch: %d then %d", got[i-1].Timestamp, got[i].Timestamp)
		}
	}
	if d := got[4].Timestamp - got[3].Timestamp; d != 3000 {
		t.Fatalf("frame interval after the switch %d, want 3000", d)
	}
	_, _, _, track, ok := unpackSent(ot.sent.Load())
	if !ok || track != 0 {
		t.Fatalf("sent state names track %d, want 0", track)
	}
}

// BenchmarkLayerFeedback is the per-viewer cost of congestion feedback
// once pion has decrypted it: one TWCC report on 35 packets read in place
// (splitTWCC) and a new decision (about ten reports a second per viewer).
func BenchmarkLayerFeedback(b *testing.B) {
	lc := newLayerControl(&fakeLayers{rates: [3]int64{1_600_000, 150_000, 600_000}}, 0)
	tw := &rtcp.TransportLayerCC{PacketStatusCount: 35, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 35}}}
	for range 35 {
		tw.RecvDeltas = append(tw.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250})
	}
	raw, err := withTWCCHeader(tw).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	rest := make([]byte, 0, 1500)
	now := time.Unix(1, 0)
	var sent uint64
	b.ReportAllocs()
	for range b.N {
		now = now.Add(100 * time.Millisecond)
		sent += 20_000
		var tw twccCount
		rest, tw = splitTWCC(raw, rest[:0])
		lc.feedback(nil, tw, 7, sent, now)
	}
}

// BenchmarkLayerControlSize is the memory a viewer's layer control takes.
func BenchmarkLayerControlSize(b *testing.B) {
	src := &fakeLayers{}
	b.ReportAllocs()
	for range b.N {
		lc := newLayerControl(src, 0)
		lc.start(time.Unix(1, 0))
	}
}

// TestSplitTWCC: TWCC feedback in a compound packet is counted in place,
// as pion's parser counts it, and the rest unmarshals as before; what is
// cut short is left to rtcp.Unmarshal.
func TestSplitTWCC(t *testing.T) {
	tw := &rtcp.TransportLayerCC{
		SenderSSRC: 1, MediaSSRC: 2, BaseSequenceNumber: 100, PacketStatusCount: 19,
		PacketChunks: []rtcp.PacketStatusChunk{
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 10},
			&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 3},
			&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: []uint16{
				rtcp.TypeTCCPacketNotReceived, rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived,
				rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta, rtcp.TypeTCCPacketReceivedSmallDelta,
				rtcp.TypeTCCPacketReceivedSmallDelta,
			}},
		},
	}
	for range 10 + 4 + 1 { // one delta per received packet
		tw.RecvDeltas = append(tw.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250})
	}
	tw.RecvDeltas[len(tw.RecvDeltas)-2].Type, tw.RecvDeltas[len(tw.RecvDeltas)-2].Delta = rtcp.TypeTCCPacketReceivedLargeDelta, 100000
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 7, FractionLost: 10}}}
	oneBit := &rtcp.TransportLayerCC{PacketStatusCount: 14, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeOneBit, SymbolList: []uint16{1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
	}}
	for range 11 {
		oneBit.RecvDeltas = append(oneBit.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250})
	}
	raw, err := rtcp.Marshal([]rtcp.Packet{rr, withTWCCHeader(tw), withTWCCHeader(oneBit)})
	if err != nil {
		t.Fatal(err)
	}
	// pion's own reading of the same bytes.
	parsed, err := rtcp.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	wantLost, wantTotal := 0, 0
	for _, p := range parsed {
		if p, ok := p.(*rtcp.TransportLayerCC); ok {
			l, n := twccLoss(p)
			wantLost, wantTotal = wantLost+l, wantTotal+n
		}
	}
	rest, c := splitTWCC(raw, nil)
	if c.lost != wantLost || c.total != wantTotal || c.total != 33 || c.lost != 8 {
		t.Fatalf("splitTWCC counted %d/%d, pion %d/%d, want 8/33", c.lost, c.total, wantLost, wantTotal)
	}
	others, err := rtcp.Unmarshal(rest)
	if err != nil || len(others) != 1 {
		t.Fatalf("rest: %v %v", others, err)
	}
	if got, ok := others[0].(*rtcp.ReceiverReport); !ok || got.Reports[0].FractionLost != 10 {
		t.Fatalf("rest: %#v", others[0])
	}
	// Cut short: everything left goes to rest, nothing is counted twice.
	for cut := 1; cut < len(raw); cut++ {
		rest, c := splitTWCC(raw[:cut], nil)
		if c.total > wantTotal || len(rest) > cut {
			t.Fatalf("cut at %d: counted %d, rest %d bytes", cut, c.total, len(rest))
		}
	}
}

// withTWCCHeader sets the RTCP header of a TWCC feedback the way pion's
// feedback generator does (interceptor/pkg/twcc).
func withTWCCHeader(tw *rtcp.TransportLayerCC) *rtcp.TransportLayerCC {
	n := 20 + 2*len(tw.PacketChunks)
	for _, d := range tw.RecvDeltas {
		n++
		if d.Type == rtcp.TypeTCCPacketReceivedLargeDelta {
			n++
		}
	}
	padding := n%4 != 0
	for n%4 != 0 {
		n++
	}
	tw.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Padding: padding, Length: uint16(n/4 - 1)}
	return tw
}

// FuzzSplitTWCC: RTCP from the network never makes splitTWCC panic, and it
// keeps or counts every byte at most once.
func FuzzSplitTWCC(f *testing.F) {
	tw := withTWCCHeader(&rtcp.TransportLayerCC{PacketStatusCount: 3, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 3}},
		RecvDeltas: []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta}}})
	raw, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}, tw})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)-3])
	f.Add([]byte{0x8f, 205, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rest, c := splitTWCC(b, nil)
		if len(rest) > len(b) || c.lost < 0 || c.lost > c.total {
			t.Fatalf("rest %d of %d bytes, counted %d/%d", len(rest), len(b), c.lost, c.total)
		}
	})
}
