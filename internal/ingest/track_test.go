package ingest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/reorder"
)

// fakeSink records what an ingest passes on.
type fakeSink struct {
	seqs      []uint16
	keyframes int
	info      []media.VideoInfo
}

func (f *fakeSink) Write(p *hub.Packet)                   { f.seqs = append(f.seqs, p.SequenceNumber) }
func (f *fakeSink) RequestTrackKeyframe(int) bool         { f.keyframes++; return true }
func (f *fakeSink) SetVideoInfo(_ int, i media.VideoInfo) { f.info = append(f.info, i) }
func (f *fakeSink) SetSenderReport(int, uint64, uint32)   {}

type countInc struct{ n int }

func (c *countInc) Inc() { c.n++ }

var (
	h264Codec = media.Codec{MimeType: "video/H264", ClockRate: 90000}
	opusCodec = media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	pSlice    = []byte{0x41, 0x9a}
	idrSlice  = []byte{0x65, 0x88}
	t0        = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func pkt(seq uint16, payload []byte) *hub.Packet {
	return &hub.Packet{SequenceNumber: seq, Payload: payload}
}

type nackLog struct{ sent [][]uint16 }

// send is a track's RTCP path that keeps the sequence numbers NACKed.
func (n *nackLog) send(pkts []rtcp.Packet) error {
	for _, p := range pkts {
		if nack, ok := p.(*rtcp.TransportLayerNack); ok {
			var seqs []uint16
			for _, pair := range nack.Nacks {
				seqs = append(seqs, pair.PacketList()...)
			}
			n.sent = append(n.sent, seqs)
		}
	}
	return nil
}

func TestIngestNACKAndGiveUp(t *testing.T) {
	out := &fakeSink{}
	nacks := &nackLog{}
	late := &countInc{}
	in := NewTrack(Options{Reorder: reorder.Config{MaxDelay: 100 * time.Millisecond}},
		TrackConfig{Codec: h264Codec, NACK: true, RTCP: nacks.send, Late: late}, out)
	if in.nackRetry != 25*time.Millisecond {
		t.Fatalf("NACK retry %v, want a quarter of the window", in.nackRetry)
	}
	in.push(1, pkt(1, pSlice), ms(0))
	in.push(4, pkt(4, pSlice), ms(10)) // 2 and 3 missing: NACKed at once
	if !slices.EqualFunc(nacks.sent, [][]uint16{{2, 3}}, slices.Equal) {
		t.Fatalf("NACKs %v, want [[2 3]]", nacks.sent)
	}
	if w, ok := in.wake(); !ok || !w.Equal(ms(35)) {
		t.Fatalf("wake %v %v, want the NACK retry at 35 ms", w, ok)
	}
	in.tick(ms(20))
	if len(nacks.sent) != 1 {
		t.Fatalf("NACKed again before the retry interval: %v", nacks.sent)
	}
	in.push(2, pkt(2, pSlice), ms(30)) // a retransmission fills 2
	in.tick(ms(35))
	if !slices.EqualFunc(nacks.sent, [][]uint16{{2, 3}, {3}}, slices.Equal) {
		t.Fatalf("NACKs %v, want 3 asked again", nacks.sent)
	}
	if !slices.Equal(out.seqs, []uint16{1, 2}) {
		t.Fatalf("written %v, want [1 2]", out.seqs)
	}
	// 3 never comes: 4 has waited 100 ms at 110 ms.
	in.tick(ms(109))
	if out.keyframes != 0 || len(out.seqs) != 2 {
		t.Fatalf("gave up early: written %v, keyframes %d", out.seqs, out.keyframes)
	}
	in.tick(ms(110))
	if !slices.Equal(out.seqs, []uint16{1, 2, 4}) || out.keyframes != 1 {
		t.Fatalf("after the deadline: written %v, keyframes %d; want [1 2 4] and one request", out.seqs, out.keyframes)
	}
	if _, ok := in.wake(); ok {
		t.Fatal("wake with nothing held")
	}
	in.push(3, pkt(3, pSlice), ms(120)) // too late
	if late.n != 1 || len(out.seqs) != 3 {
		t.Fatalf("late packet: counted %d, written %v", late.n, out.seqs)
	}
}

func TestIngestAudioLossAsksNothing(t *testing.T) {
	out := &fakeSink{}
	in := NewTrack(Options{}, TrackConfig{Codec: opusCodec}, out)
	in.push(1, pkt(1, []byte{1}), ms(0))
	in.push(3, pkt(3, []byte{3}), ms(20))
	in.tick(ms(120))
	if !slices.Equal(out.seqs, []uint16{1, 3}) || out.keyframes != 0 {
		t.Fatalf("written %v, keyframes %d", out.seqs, out.keyframes)
	}
}

func TestIngestPaddingFillsTheSequence(t *testing.T) {
	out := &fakeSink{}
	nacks := &nackLog{}
	in := NewTrack(Options{}, TrackConfig{Codec: h264Codec, NACK: true, RTCP: nacks.send}, out)
	in.push(1, pkt(1, pSlice), ms(0))
	in.push(2, nil, ms(1)) // padding
	in.push(3, pkt(3, pSlice), ms(2))
	in.push(4, nil, ms(3)) // padding
	in.push(5, nil, ms(4)) // padding
	in.push(6, pkt(6, pSlice), ms(5))
	// Padding is neither forwarded nor left as a gap: viewers would NACK it
	// in vain and freeze until the next keyframe.
	if !slices.Equal(out.seqs, []uint16{1, 2, 3}) || len(nacks.sent) != 0 || out.keyframes != 0 {
		t.Fatalf("written %v, NACKs %v, keyframes %d", out.seqs, nacks.sent, out.keyframes)
	}
}

func TestIngestPeriodicKeyframeRequest(t *testing.T) {
	out := &fakeSink{}
	in := NewTrack(Options{PLIInterval: 2 * time.Second}, TrackConfig{Codec: h264Codec}, out)
	seq := uint16(0)
	send := func(at int, payload []byte) {
		seq++
		in.push(seq, pkt(seq, payload), ms(at))
	}
	send(0, idrSlice)
	for at := 40; at < 2000; at += 40 {
		send(at, pSlice)
	}
	if out.keyframes != 0 {
		t.Fatalf("%d requests before the interval", out.keyframes)
	}
	send(2000, pSlice)
	if out.keyframes != 1 {
		t.Fatalf("%d requests at the interval, want 1", out.keyframes)
	}
	send(2040, pSlice)
	send(3000, idrSlice) // the encoder obliged: the timer restarts from here
	for at := 3040; at < 5000; at += 40 {
		send(at, pSlice)
	}
	if out.keyframes != 1 {
		t.Fatalf("%d requests, want still 1", out.keyframes)
	}
	send(5000, pSlice)
	if out.keyframes != 2 {
		t.Fatalf("%d requests, want 2", out.keyframes)
	}
}

func TestIngestPeriodicOffByDefault(t *testing.T) {
	out := &fakeSink{}
	in := NewTrack(Options{}, TrackConfig{Codec: h264Codec}, out)
	for i := range 1000 {
		in.push(uint16(i), pkt(uint16(i), pSlice), ms(i*40))
	}
	if out.keyframes != 0 {
		t.Fatalf("%d keyframe requests with the timer off", out.keyframes)
	}
}

func TestIngestVideoInfo(t *testing.T) {
	out := &fakeSink{}
	in := NewTrack(Options{}, TrackConfig{Codec: h264Codec}, out)
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8}
	in.push(1, pkt(1, sps), ms(0))
	in.push(2, pkt(2, sps), ms(1))
	want := media.VideoInfo{Width: 320, Height: 240, Profile: "Constrained Baseline", Level: "3.1"}
	if len(out.info) != 1 || out.info[0] != want {
		t.Fatalf("info %+v, want once %+v", out.info, want)
	}
}

// TestWriteRTPGivesUpOnTime: a push-mode track (WriteRTP, as RTSP sessions
// feed it) gives a gap up by its timer when no packet follows, NACKs it
// before, copies payloads, and drops what comes after Close.
func TestWriteRTPGivesUpOnTime(t *testing.T) {
	out := &lockedSink{}
	nacks := &nackLog{}
	in := NewTrack(Options{Reorder: reorder.Config{MaxDelay: 30 * time.Millisecond}},
		TrackConfig{Codec: opusCodec, NACK: true, RTCP: func(p []rtcp.Packet) error {
			out.mu.Lock()
			defer out.mu.Unlock()
			return nacks.send(p)
		}}, out)
	payload := []byte{1, 2, 3}
	in.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: 1, SSRC: 7}, Payload: payload})
	payload[0] = 9 // the ring has its own copy
	in.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: 3, SSRC: 7}, Payload: []byte{3}})
	deadline := time.Now().Add(2 * time.Second)
	for {
		out.mu.Lock()
		n := len(out.seqs)
		out.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("packet 3 not released after the gap's deadline: %v", out.seqs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	in.Close()
	in.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: 4, SSRC: 7}, Payload: []byte{4}})
	out.mu.Lock()
	defer out.mu.Unlock()
	if !slices.Equal(out.seqs, []uint16{1, 3}) || out.first[0] != 1 {
		t.Fatalf("written %v (first payload byte %d), want [1 3] from 1", out.seqs, out.first[0])
	}
	if len(nacks.sent) == 0 || !slices.Equal(nacks.sent[0], []uint16{2}) {
		t.Fatalf("NACKs %v, want 2 asked for", nacks.sent)
	}
	if s := in.Stats(); s.Unrecovered != 1 {
		t.Fatalf("unrecovered %d, want 1", s.Unrecovered)
	}
}

// lockedSink is a fakeSink for a track whose timer writes concurrently.
type lockedSink struct {
	mu    sync.Mutex
	seqs  []uint16
	first []byte
}

func (f *lockedSink) Write(p *hub.Packet) {
	f.mu.Lock()
	f.seqs = append(f.seqs, p.SequenceNumber)
	f.first = append(f.first, p.Payload[0])
	f.mu.Unlock()
}
func (f *lockedSink) RequestTrackKeyframe(int) bool       { return true }
func (f *lockedSink) SetVideoInfo(int, media.VideoInfo)   {}
func (f *lockedSink) SetSenderReport(int, uint64, uint32) {}
