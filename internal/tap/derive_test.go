package tap

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

var pcmaCodec = media.Codec{MimeType: "audio/PCMA", ClockRate: 8000, Channels: 1}

// derivedStream publishes a PCMA stream into a hub whose Deriver is x.
func derivedStream(t *testing.T, x *Transcoders) (*hub.Writer, int) {
	t.Helper()
	h := hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: time.Second, MaxViewersPerStream: 10, Deriver: x})
	stW, err := h.Publish("s", hubtest.NopPublisher{}, []media.Codec{pcmaCodec})
	if err != nil {
		t.Fatal(err)
	}
	return stW, stW.AddTrack(pcmaCodec)
}

// feedPCMA writes n 20 ms packets of A-law silence-ish samples.
func feedPCMA(w *hub.Writer, track, from, n int) {
	for i := from; i < from+n; i++ {
		p := make([]byte, 160)
		for j := range p {
			p[j] = 0xd5 ^ byte(j&7) // small steps around zero
		}
		w.Write(&hub.Packet{Track: track, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), Payload: p})
	}
}

// waitRunning polls until x runs n transcoders.
func waitRunning(t *testing.T, x *Transcoders, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for x.Running() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d transcoders running, want %d", x.Running(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTranscodersLifecycle: a G.711 track gets an Opus and an AAC track;
// the Opus track's transcoder starts with the first demand, is shared by the second, writes
// Opus packets on the 48 kHz clock of the source's timestamps, and stops
// IdleClose after the last release.
func TestTranscodersLifecycle(t *testing.T) {
	needTranscode(t)
	x := NewTranscoders(TranscodersConfig{IdleClose: 50 * time.Millisecond})
	defer x.Close()
	w, src := derivedStream(t, x)
	st := w.Stream()
	defer w.End()
	tracks := st.Tracks()
	if len(tracks) != 3 || !tracks[1].Derived || tracks[1].Source != src || !strings.EqualFold(tracks[1].Codec.Name(), "opus") ||
		!tracks[2].Derived || tracks[2].Source != src || !isAAC(tracks[2].Codec) {
		t.Fatalf("tracks %+v, want PCMA, and an Opus and an AAC track derived from it", tracks)
	}
	if strings.Contains(tracks[1].Codec.Fmtp, "stereo=1") {
		t.Errorf("mono source, stereo Opus: %q", tracks[1].Codec.Fmtp)
	}
	if x.Running() != 0 {
		t.Fatal("a transcoder runs before any demand")
	}
	cur, err := st.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	cur.OwnPackets() // the packets are kept
	r1 := st.Demand(tracks[1].Index)
	r2 := st.Demand(tracks[1].Index)
	waitRunning(t, x, 1)
	// The transcoder's cursor is open once it runs; what is written from
	// now on is transcoded (poll: its start is asynchronous).
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var got []*hub.Packet
	for i := 0; len(got) < 10; i++ {
		feedPCMA(w, src, i*5, 5)
		for {
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Millisecond)
			p, _, err := cur.Next(rctx)
			rcancel()
			if err != nil {
				if ctx.Err() != nil {
					t.Fatalf("%d Opus packets in 5 s", len(got))
				}
				break
			}
			if p.Track == tracks[1].Index {
				got = append(got, p)
			}
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Timestamp-got[i-1].Timestamp != 960 || got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: ts %d seq %d after ts %d seq %d, want +960 and +1", i,
				got[i].Timestamp, got[i].SequenceNumber, got[i-1].Timestamp, got[i-1].SequenceNumber)
		}
	}
	// The source sends no sender reports (as RTMP and SRT do not): the
	// output gets them from the source's arrival times, which put its
	// packets within the feed's few milliseconds of when they came.
	sr, ok := st.SenderReport(tracks[1].Index)
	if !ok {
		t.Fatal("no sender report for the Opus track")
	}
	if d := time.Since(sr.WallClock(got[len(got)-1].Timestamp, 48000)); d < -time.Second || d > 5*time.Second {
		t.Errorf("the newest Opus packet is %v old by its sender report", d)
	}
	r1()
	r1() // a second call changes nothing
	time.Sleep(100 * time.Millisecond)
	if x.Running() != 1 {
		t.Fatal("the transcoder stopped while a consumer still demands it")
	}
	r2()
	waitRunning(t, x, 0)
	// Demand again: a new transcoder.
	r3 := st.Demand(tracks[1].Index)
	waitRunning(t, x, 1)
	r3()
}

// TestTranscodersAlways runs the transcoder from the track's declaration
// to the stream's end, without demand.
func TestTranscodersAlways(t *testing.T) {
	needTranscode(t)
	x := NewTranscoders(TranscodersConfig{Always: true, IdleClose: 10 * time.Millisecond})
	defer x.Close()
	w, _ := derivedStream(t, x)
	st := w.Stream()
	waitRunning(t, x, 2) // to Opus and to AAC
	release := st.Demand(1)
	release()
	time.Sleep(50 * time.Millisecond)
	if x.Running() != 2 {
		t.Fatal("an always-on transcoder stopped after its viewer left")
	}
	w.End()
	waitRunning(t, x, 0)
}

// countHandler counts log records.
type countHandler struct{ n atomic.Int32 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countHandler) WithGroup(string) slog.Handler             { return h }

// TestTranscodersUnavailable: without the libraries no track is derived,
// the source track says why (the API shows it), and the log says so once.
func TestTranscodersUnavailable(t *testing.T) {
	logs := &countHandler{}
	x := NewTranscoders(TranscodersConfig{Log: slog.New(logs)})
	defer x.Close()
	x.avail = errors.New("libopus.so.0: cannot open shared object file")
	for range 2 {
		w, _ := derivedStream(t, x)
		st := w.Stream()
		tracks := st.Tracks()
		if len(tracks) != 1 || !strings.HasPrefix(tracks[0].DeriveErr, "unavailable: ") || !strings.Contains(tracks[0].DeriveErr, "libopus") {
			t.Fatalf("tracks %+v, want PCMA alone saying why it is not transcoded", tracks)
		}
		w.End()
	}
	if n := logs.n.Load(); n != 1 {
		t.Errorf("%d log lines, want 1", n)
	}
	// An Opus track would get an AAC one; a VP8 track none.
	if c, err := x.Derive(hubtest.Opus); c != nil || err == nil || !strings.HasPrefix(err.Error(), "unavailable: ") {
		t.Errorf("Derive(opus) = %v, %v; want unavailable: …", c, err)
	}
	if c, err := x.Derive(media.Codec{MimeType: "video/VP8", ClockRate: 90000}); c != nil || err != nil {
		t.Errorf("Derive(VP8) = %v, %v", c, err)
	}
}

// TestTicksToDuration: every tick count, negative ones included, comes
// back from the frame writer's conversion as itself, at 48 and 8 kHz.
func TestTicksToDuration(t *testing.T) {
	for _, rate := range []int64{48000, 8000} {
		for _, ticks := range []int64{0, 1, 2, 3, 312, 959, 960, 7999, 8000, 47999, 48000, 48001, 1 << 33, -1, -2, -312, -960, -47999, -48000, -48312} {
			d := ticksToDuration(ticks, rate)
			s, rest := d/time.Second, d%time.Second
			if got := int64(s)*rate + int64(rest)*rate/int64(time.Second); got != ticks {
				t.Errorf("%d ticks at %d Hz: %v comes back as %d", ticks, rate, d, got)
			}
		}
	}
}

// newDerivedSource is newSource on a hub whose Deriver is a Transcoders
// made with cfg, closed when the test ends (after the stream).
func newDerivedSource(t testing.TB, video, audio bool, cfg TranscodersConfig) (*hubtest.Source, *Transcoders) {
	t.Helper()
	x := NewTranscoders(cfg)
	t.Cleanup(x.Close)
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second, MaxViewersPerStream: 10, Deriver: x})
	s := hubtest.NewSource(t, h, "s", video, audio)
	s.VTS0, s.ATS0, s.VSeq, s.ASeq = 0xfffff000, 123456789, 65530, 1000
	t.Cleanup(s.Writer.End)
	return s, x
}

// waitDerived reads the stream from its newest keyframe until n packets
// of the derived track came, and returns them.
func waitDerived(t testing.TB, st *hub.Stream, track, n int) []*hub.Packet {
	t.Helper()
	cur, err := st.Tap()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	cur.OwnPackets() // the packets are kept
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []*hub.Packet
	for len(got) < n {
		p, _, err := cur.Next(ctx)
		if err != nil {
			t.Fatalf("%d packets of track %d: %v", len(got), track, err)
		}
		if p.Track == track {
			got = append(got, p)
		}
	}
	return got
}

// TestTranscodersToAAC: a G.711 track's derived AAC track is written, on
// demand, as RFC 3640 packets 1024 ticks of 48 kHz apart that the Reader's
// depacketizer takes; the transcoder is counted as pcma→aac.
func TestTranscodersToAAC(t *testing.T) {
	needTranscode(t)
	x := NewTranscoders(TranscodersConfig{IdleClose: 20 * time.Millisecond})
	defer x.Close()
	w, src := derivedStream(t, x)
	defer w.End()
	st := w.Stream()
	aac := st.Tracks()[2]
	before := transcode.Counts().ByDirection[transcode.Direction{From: "pcma", To: "aac"}]
	cur, err := st.Tap()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	cur.OwnPackets() // the packets are kept
	release := st.Demand(aac.Index)
	waitRunning(t, x, 1)
	// An audio-only stream has no keyframe to start from: the
	// transcoder takes what is written once its cursor is open.
	var got []*hub.Packet
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; len(got) < 40; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d AAC packets in 5 s", len(got))
		}
		feedPCMA(w, src, i*5, 5)
		time.Sleep(5 * time.Millisecond) // the pace of the feed
		for {
			p, _, ok, err := cur.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if p.Track == aac.Index {
				got = append(got, p)
			}
		}
	}
	if n := transcode.Counts().ByDirection[transcode.Direction{From: "pcma", To: "aac"}] - before; n != 1 {
		t.Errorf("%d pcma→aac transcoders counted, want 1", n)
	}
	p, err := parseAAC(aac.Codec)
	if err != nil {
		t.Fatal(err)
	}
	d := newAACDepacketizer(p)
	for i, pkt := range got {
		if i > 0 && pkt.Timestamp-got[i-1].Timestamp != 1024 {
			t.Fatalf("packet %d: ts +%d, want +1024", i, pkt.Timestamp-got[i-1].Timestamp)
		}
		if aus := d.units(pkt); len(aus) != 1 || len(aus[0]) == 0 {
			t.Fatalf("packet %d: %d access units", i, len(aus))
		}
	}
	if _, ok := st.SenderReport(aac.Index); !ok {
		t.Error("no sender report for the AAC track")
	}
	release()
	waitRunning(t, x, 0)
}

// TestTranscodersLag: the lag is the time from a source packet's arrival
// in the stream to its transcoded packets: audio written 300 ms before
// the transcoder starts reports at least that, and the gauge is closed
// with the transcoder.
func TestTranscodersLag(t *testing.T) {
	needTranscode(t)
	g := &recGauge{}
	var stream string
	s, x := newDerivedSource(t, true, true, TranscodersConfig{IdleClose: 10 * time.Millisecond,
		Lag: func(name string) Gauge { stream = name; return g }})
	s.Feed(0, 25) // 0.5 s, at once, from a keyframe where the transcoder starts
	const behind = 300 * time.Millisecond
	time.Sleep(behind)
	aac := s.Stream.Derived(s.A)[0]
	release := s.Stream.Demand(aac.Index)
	waitDerived(t, s.Stream, aac.Index, 20)
	release()
	waitRunning(t, x, 0)
	g.mu.Lock()
	defer g.mu.Unlock()
	if stream != "s" || len(g.sets) < 20 || g.closed != 1 {
		t.Fatalf("gauge for %q: %d values, closed %d times; want stream s, ≥ 20 values, closed once", stream, len(g.sets), g.closed)
	}
	for _, d := range g.sets {
		if d < behind || d > behind+10*time.Second {
			t.Fatalf("lag %v, want at least %v (the audio waited that long in the ring)", d, behind)
		}
	}
}

// recGauge records what a transcoder reports as its lag.
type recGauge struct {
	mu     sync.Mutex
	sets   []time.Duration
	closed int
}

func (g *recGauge) Set(d time.Duration) { g.mu.Lock(); g.sets = append(g.sets, d); g.mu.Unlock() }
func (g *recGauge) Close()              { g.mu.Lock(); g.closed++; g.mu.Unlock() }

// TestTranscodersOpusToPCMU: an Opus track's derived PCMU track carries
// the Opus source's tone (440 Hz at -12 dBFS RMS) as μ-law at 8 kHz, in
// 20 ms packets 160 ticks apart; Always does not start it.
func TestTranscodersOpusToPCMU(t *testing.T) {
	needTranscode(t)
	x := NewTranscoders(TranscodersConfig{Always: true, IdleClose: 10 * time.Millisecond})
	defer x.Close()
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second, MaxViewersPerStream: 10, Deriver: x})
	opus := hubtest.Opus
	w, err := h.Publish("o", hubtest.NopPublisher{}, []media.Codec{opus})
	if err != nil {
		t.Fatal(err)
	}
	defer w.End()
	src := w.AddTrack(opus)
	st := w.Stream()
	var pcmu hub.Track
	var names []string
	for _, d := range st.Derived(src) {
		names = append(names, d.Codec.Name())
		if strings.EqualFold(d.Codec.Name(), "pcmu") {
			pcmu = d
		}
	}
	if strings.Join(names, ",") != "MPEG4-GENERIC,PCMU,PCMA" {
		t.Fatalf("derived from Opus: %v, want AAC, PCMU, PCMA", names)
	}
	waitRunning(t, x, 1) // Always: the AAC one only
	enc, err := transcode.NewOpusEncoder(48000, 1, 64000, transcode.DefaultOpusComplexity)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	cur, err := st.Tap()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	cur.OwnPackets() // the packets are kept
	release := st.Demand(pcmu.Index)
	defer release()
	waitRunning(t, x, 2)
	amp := math.Pow(10, -9.0/20) // -12 dBFS RMS
	var got []*hub.Packet
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; len(got) < 50; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d PCMU packets in 5 s", len(got))
		}
		pcm := make([]float32, 960)
		for j := range pcm {
			pcm[j] = float32(amp * math.Sin(2*math.Pi*440*float64(i*960+j)/48000))
		}
		pkt, err := enc.Encode(pcm)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(&hub.Packet{Track: src, SequenceNumber: uint16(i), Timestamp: uint32(i * 960), Payload: pkt})
		time.Sleep(2 * time.Millisecond) // the feed's pace: the transcoder's cursor opens meanwhile
		for {
			p, _, ok, err := cur.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if p.Track == pcmu.Index {
				got = append(got, p)
			}
		}
	}
	var x8 []float64
	for i, p := range got {
		if len(p.Payload) != 160 || i > 0 && p.Timestamp-got[i-1].Timestamp != 160 {
			t.Fatalf("packet %d: %d bytes, ts +%d; want 160 and +160", i, len(p.Payload), p.Timestamp-got[i-1].Timestamp)
		}
		if i >= 10 { // past the start
			for _, s := range transcode.DecodeG711(nil, p.Payload, true) {
				x8 = append(x8, float64(s))
			}
		}
	}
	if hz, db := toneOf(x8, 8000); math.Abs(hz-440) > 5 || math.Abs(db+12) > 1.5 {
		t.Errorf("PCMU decodes to %.1f Hz at %.1f dBFS RMS, want 440 Hz at -12", hz, db)
	}
}

// toneOf is the frequency (by zero crossings) and RMS level of x.
func toneOf(x []float64, rate int) (hz, db float64) {
	var crossings, sum float64
	first, last := -1, 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			if first < 0 {
				first = i
			} else {
				crossings++
			}
			last = i
		}
		sum += x[i] * x[i]
	}
	return crossings * float64(rate) / float64(last-first), 10 * math.Log10(sum/float64(len(x)))
}

// TestTranscodersAACToPCMA: an AAC track (stereo, 48 kHz, as RTMP
// publishers send it) gets PCMU and PCMA tracks; the PCMA one carries its
// tone (440 Hz at -13.5 dBFS RMS in both channels) mixed to mono at
// 8 kHz.
func TestTranscodersAACToPCMA(t *testing.T) {
	needTranscode(t)
	x := NewTranscoders(TranscodersConfig{IdleClose: 10 * time.Millisecond})
	defer x.Close()
	ss := newStartSource(t, x, "s", "aac", false)
	st := ss.s.Stream
	var names []string
	for _, d := range st.Derived(ss.audio) {
		names = append(names, d.Codec.Name())
	}
	if strings.Join(names, ",") != "opus,PCMU,PCMA" {
		t.Fatalf("derived from AAC: %v, want Opus, PCMU, PCMA", names)
	}
	pcma := derivedTo(t, st, ss.audio, "pcma")
	cur, err := st.Tap()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	cur.OwnPackets() // the packets are kept
	release := st.Demand(pcma)
	defer release()
	waitRunning(t, x, 1)
	var pcm []float64
	deadline := time.Now().Add(5 * time.Second)
	for i, n := 0, 0; n < 50; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d PCMA packets in 5 s", n)
		}
		ss.feed(i, i+1)
		time.Sleep(2 * time.Millisecond) // the feed's pace: the transcoder's cursor opens meanwhile
		for {
			p, _, ok, err := cur.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if p.Track != pcma {
				continue
			}
			if n++; n > 10 { // past the start
				for _, s := range transcode.DecodeG711(nil, p.Payload, false) {
					pcm = append(pcm, float64(s))
				}
			}
		}
	}
	if hz, db := toneOf(pcm, 8000); math.Abs(hz-440) > 5 || math.Abs(db-20*math.Log10(0.3/math.Sqrt2)) > 1.5 {
		t.Errorf("PCMA decodes to %.1f Hz at %.1f dBFS RMS, want 440 Hz at %.1f", hz, db, 20*math.Log10(0.3/math.Sqrt2))
	}
}
