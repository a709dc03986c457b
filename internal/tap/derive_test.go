package tap

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/media"
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

// TestTranscodersLifecycle: a G.711 track gets an Opus track; its
// transcoder starts with the first demand, is shared by the second, writes
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
	if len(tracks) != 2 || !tracks[1].Derived || tracks[1].Source != src || !strings.EqualFold(tracks[1].Codec.Name(), "opus") {
		t.Fatalf("tracks %+v, want PCMA and an Opus track derived from it", tracks)
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
	waitRunning(t, x, 1)
	release := st.Demand(1)
	release()
	time.Sleep(50 * time.Millisecond)
	if x.Running() != 1 {
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
	// An Opus track is not derived from: nothing to say.
	if c, err := x.Derive(hubtest.Opus); c != nil || err != nil {
		t.Errorf("Derive(opus) = %v, %v", c, err)
	}
}

// TestTicksToDuration: every tick count, negative ones included, comes
// back from the frame writer's conversion as itself.
func TestTicksToDuration(t *testing.T) {
	for _, ticks := range []int64{0, 1, 2, 3, 312, 959, 960, 47999, 48000, 48001, 1 << 33, -1, -2, -312, -960, -47999, -48000, -48312} {
		d := ticksToDuration(ticks)
		s, rest := d/time.Second, d%time.Second
		if got := int64(s)*48000 + int64(rest)*48000/int64(time.Second); got != ticks {
			t.Errorf("%d ticks: %v comes back as %d", ticks, d, got)
		}
	}
}
