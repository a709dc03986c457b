package tap

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newSource publishes H264 and Opus, as asked, on a hub of its own, from
// RTP clocks and sequence numbers that start at arbitrary values (video's
// about to wrap), and ends the stream when the test does. Tests write at
// most one GOP (25 frames, s.Feed(0, 50)) before they read: a cursor that
// reads after more starts at the newest keyframe.
func newSource(t testing.TB, video, audio bool) *hubtest.Source {
	t.Helper()
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second, MaxViewersPerStream: 10})
	s := hubtest.NewSource(t, h, "s", video, audio)
	s.VTS0, s.ATS0, s.VSeq, s.ASeq = 0xfffff000, 123456789, 65530, 1000
	t.Cleanup(s.Writer.End)
	return s
}

// units reads until n units came or the stream ended.
func units(t testing.TB, r *Reader, n int) []*Unit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []*Unit
	for len(out) < n {
		u, err := r.Next(ctx)
		if err != nil {
			if errors.Is(err, hub.ErrEnded) {
				return out
			}
			t.Fatalf("after %d units: %v", len(out), err)
		}
		out = append(out, u)
	}
	return out
}

// checkOrder fails unless units come in presentation order.
func checkOrder(t testing.TB, us []*Unit) {
	t.Helper()
	for i := 1; i < len(us); i++ {
		if us[i].Time() < us[i-1].Time() {
			t.Fatalf("unit %d (%s at %v) before unit %d (%s at %v)", i, us[i].Track.Codec, us[i].Time(),
				i-1, us[i-1].Track.Codec, us[i-1].Time())
		}
	}
}

// audioIndex is the index n that the Opus test packet carries.
func audioIndex(t testing.TB, u *Unit) int {
	t.Helper()
	for n := range 1 << 16 {
		if string(client.OpusTestPacket(uint16(n))) == string(u.Payload) {
			return n
		}
	}
	t.Fatalf("unknown audio payload %x", u.Payload)
	return 0
}

// TestReaderSenderReports: sender reports say that audio was captured
// 300 ms after video of the same RTP-relative time; the reader places
// audio accordingly, whatever order the packets came in.
func TestReaderSenderReports(t *testing.T) {
	s := newSource(t, true, true)
	t0 := time.Now().Add(-time.Hour)
	s.Writer.SetSenderReport(s.V, media.ToNTP(t0), s.VTS0)
	s.Writer.SetSenderReport(s.A, media.ToNTP(t0.Add(300*time.Millisecond)), s.ATS0)
	r, err := Open(context.Background(), s.Stream, Options{Audio: AudioOpus})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.Feed(0, 50)
	s.Writer.End()
	us := units(t, r, 1000)
	if len(us) != 75 {
		t.Fatalf("%d units, want 75 (all, at the end)", len(us))
	}
	checkOrder(t, us)
	var video, audio int
	for _, u := range us {
		switch u.Track.Codec {
		case H264:
			if want := time.Duration(video) * 40 * time.Millisecond; u.Time() != want {
				t.Fatalf("video frame %d at %v, want %v", video, u.Time(), want)
			}
			if u.Key != (video%25 == 0) {
				t.Errorf("video frame %d: key %v", video, u.Key)
			}
			video++
		case Opus:
			n := audioIndex(t, u)
			want := time.Duration(n)*20*time.Millisecond + 300*time.Millisecond
			if d := u.Time() - want; d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("audio packet %d at %v, want %v", n, u.Time(), want)
			}
			audio++
		}
	}
	if video == 0 || audio == 0 {
		t.Fatalf("%d video, %d audio units", video, audio)
	}
	if w := us[0].Wall; w.Sub(t0).Abs() > time.Millisecond {
		t.Errorf("first unit's wall clock %v, want %v (the video's sender report)", w, t0)
	}
}

// TestReaderArrival: without sender reports, audio is placed by arrival:
// audio that arrives with a video frame is taken to be simultaneous.
func TestReaderArrival(t *testing.T) {
	for _, tc := range []struct {
		name        string
		audioBefore int  // audio packets written before the first keyframe
		videoLeads  bool // each video frame is written before its audio
	}{
		{"video first", 0, true},
		{"together", 0, false},
		{"audio first", 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, true, true)
			r, err := Open(context.Background(), s.Stream, Options{Audio: AudioOpus})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i := range tc.audioBefore {
				s.Audio(i)
			}
			for i := 0; i < 48; i++ {
				if tc.videoLeads && i%2 == 0 {
					s.Video(i / 2)
				}
				s.Audio(tc.audioBefore + i)
				if !tc.videoLeads && i%2 == 0 {
					s.Video(i / 2)
				}
			}
			s.Writer.End()
			us := units(t, r, 1000)
			checkOrder(t, us)
			for _, u := range us {
				if u.Track.Codec != Opus {
					continue
				}
				// Audio packet audioBefore came with video frame 0.
				n := audioIndex(t, u) - tc.audioBefore
				want := time.Duration(n) * 20 * time.Millisecond
				if d := u.Time() - want; d < -time.Millisecond || d > time.Millisecond {
					t.Fatalf("audio packet %d at %v, want %v", n, u.Time(), want)
				}
			}
		})
	}
}

// TestReaderAudioOnly: an audio-only stream starts at its first packet.
func TestReaderAudioOnly(t *testing.T) {
	s := newSource(t, false, true)
	r, err := Open(context.Background(), s.Stream, Options{Audio: AudioOpus})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Video() != nil || r.Audio() == nil {
		t.Fatal("want an audio track only")
	}
	s.Feed(0, 20)
	s.Writer.End()
	us := units(t, r, 100)
	if len(us) != 20 {
		t.Fatalf("%d units, want 20 (all, at the end)", len(us))
	}
	for i, u := range us {
		if u.Time() != time.Duration(i)*20*time.Millisecond {
			t.Fatalf("unit %d at %v", i, u.Time())
		}
	}
}

// TestReaderStalledAudio: a stream whose audio track sends nothing gets
// its video out, at most MaxWait late.
func TestReaderStalledAudio(t *testing.T) {
	s := newSource(t, true, true)
	r, err := Open(context.Background(), s.Stream, Options{Audio: AudioOpus, MaxWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for n := range 20 {
		s.Video(n)
	}
	us := units(t, r, 14) // frames 0..13: those more than MaxWait older than the newest (19)
	for i, u := range us {
		if u.Track.Codec != H264 || u.Time() != time.Duration(i)*40*time.Millisecond {
			t.Fatalf("unit %d: %s at %v", i, u.Track.Codec, u.Time())
		}
	}
}

// TestReaderNoAudioOption leaves audio out.
func TestReaderNoAudioOption(t *testing.T) {
	s := newSource(t, true, true)
	r, err := Open(context.Background(), s.Stream, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Audio() != nil {
		t.Fatal("audio track with AudioNone")
	}
	s.Feed(0, 10)
	s.Writer.End()
	for _, u := range units(t, r, 100) {
		if u.Track.Codec != H264 {
			t.Fatalf("unit of %s", u.Track.Codec)
		}
	}
}

// TestReaderAAC reads the AAC track derived from the stream's Opus: the
// Reader's demand starts its transcoder, which transcodes the audio of the
// GOP the ring holds at once; the units come 1024 samples apart, in order
// with the video (which waits for the late audio, though it runs further
// ahead than MaxWait), and the first is where the source's audio starts,
// less the encoder's priming.
func TestReaderAAC(t *testing.T) {
	needTranscode(t)
	s, x := newDerivedSource(t, true, true, TranscodersConfig{})
	t0 := time.Now().Add(-time.Hour)
	s.Writer.SetSenderReport(s.V, media.ToNTP(t0), s.VTS0)
	s.Writer.SetSenderReport(s.A, media.ToNTP(t0), s.ATS0)
	// One GOP (25 frames) before the Reader opens; the first audio
	// packet goes before the first keyframe, where cursors start.
	s.Feed(0, 48)
	r, err := Open(context.Background(), s.Stream, Options{Audio: AudioAAC, MaxWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := r.Audio()
	if a == nil || a.Codec != AAC || a.ClockRate != 48000 || a.AAC.SampleRate != 48000 || a.Channels != 1 {
		t.Fatalf("audio track %+v, want mono AAC at 48 kHz (no stereo=1 in the fmtp)", a)
	}
	if tr := s.Stream.Tracks()[a.Index]; !tr.Derived || tr.Source != s.A {
		t.Fatalf("audio track %+v, want the one derived from the Opus track", tr)
	}
	waitRunning(t, x, 1)
	// 47 packets of 960 samples are 44 access units, one of which the
	// encoder still holds.
	waitDerived(t, s.Stream, a.Index, 43)
	s.Writer.End()
	us := units(t, r, 1000)
	checkOrder(t, us)
	var aac []*Unit
	for _, u := range us {
		if u.Track == a {
			aac = append(aac, u)
		}
	}
	if len(aac) != 43 {
		t.Fatalf("%d AAC units for 0.94 s, want 43", len(aac))
	}
	for i := 1; i < len(aac); i++ {
		if aac[i].PTS-aac[i-1].PTS != 1024 {
			t.Fatalf("AAC unit %d at %d, previous at %d", i, aac[i].PTS, aac[i-1].PTS)
		}
	}
	// The derived track's sender reports follow the source's: the first
	// unit is Opus packet 1's time (20 ms) less the encoder's priming.
	if d := aac[0].PTS - (960 - 1024); d < -1 || d > 1 {
		t.Errorf("first AAC unit at %d, want -64 (Opus packet 1 at 960, less 1024 of priming)", aac[0].PTS)
	}
}

// TestOpenErrors: a stream with nothing to carry, and one that ended.
func TestOpenErrors(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 256, PLIMinInterval: time.Second})
	vp8 := media.Codec{MimeType: "video/VP8", ClockRate: 90000}
	stW, _ := h.Publish("vp8", hubtest.NopPublisher{}, []media.Codec{vp8})
	st := stW.Stream()
	stW.AddTrack(vp8)
	if _, err := Open(context.Background(), st, Options{Audio: AudioAAC}); !errors.Is(err, ErrNoTracks) {
		t.Errorf("VP8 only: %v, want ErrNoTracks", err)
	}
	stW.End()
	st2W, _ := h.Publish("late", hubtest.NopPublisher{}, []media.Codec{hubtest.H264})
	st2 := st2W.Stream()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, st2, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("tracks never added: %v, want the context's error", err)
	}
	st2W.End()
	if _, err := Open(context.Background(), st2, Options{}); !errors.Is(err, hub.ErrEnded) {
		t.Errorf("ended stream: %v, want hub.ErrEnded", err)
	}
}

// BenchmarkReader is the cost of reading a stream for an output, per unit
// handed out: cursor, H264 depacketizing, timeline and interleaving (Opus
// passed through; transcoding is BenchmarkTranscode's). Each round writes
// one GOP (25 frames, 50 Opus packets) and reads it back.
func BenchmarkReader(b *testing.B) {
	s := newSource(b, true, true)
	r, err := Open(context.Background(), s.Stream, Options{Audio: AudioOpus})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	read, round := 0, 0
	for read < b.N {
		s.Feed(round*50, round*50+50)
		round++
		// 75 units a round; all but the newest few are ready now.
		for ; read < round*75-5; read++ {
			if _, err := r.Next(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(read), "ns/unit")
}

// TestUnitTimeLong: times stay exact past a day of 90 kHz timestamps,
// where PTS×1e9 would overflow.
func TestUnitTimeLong(t *testing.T) {
	v := &Track{Codec: H264, ClockRate: 90000}
	u := &Unit{Track: v, PTS: 90000 * 200000} // 200000 s
	if got := u.Time(); got != 200000*time.Second {
		t.Fatalf("Time() = %v, want 200000s", got)
	}
	u.PTS += 45000
	if got := u.Time(); got != 200000*time.Second+500*time.Millisecond {
		t.Fatalf("Time() = %v", got)
	}
}

// TestReaderDerivedArrival: without sender reports a derived AAC track is
// placed from its own reports, which its transcoder makes from the source
// packets' arrival, against the video's arrival: fed in real time, the
// first AAC unit sits at Opus packet 0's time less the encoder's priming,
// within the feed's timer jitter.
func TestReaderDerivedArrival(t *testing.T) {
	needTranscode(t)
	s, _ := newDerivedSource(t, true, true, TranscodersConfig{})
	r, err := Open(context.Background(), s.Stream, Options{Audio: AudioAAC})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Its transcoder starts now, at the head of the ring (nothing is
	// written yet); then 0.6 s in real time.
	tick := time.NewTicker(20 * time.Millisecond)
	for i := range 30 {
		s.Feed(i, i+1)
		<-tick.C
	}
	tick.Stop()
	waitDerived(t, s.Stream, r.Audio().Index, 20)
	s.Writer.End()
	var first *Unit
	for _, u := range units(t, r, 1000) {
		if u.Track == r.Audio() {
			first = u
			break
		}
	}
	if first == nil {
		t.Fatal("no AAC unit")
	}
	t.Logf("first AAC unit at %d (48 kHz ticks from the first video frame)", first.PTS)
	if d := first.PTS + 1024; d < -960 || d > 960 {
		t.Errorf("first AAC unit at %d, want -1024 (Opus packet 0, less 1024 of priming) within 20 ms", first.PTS)
	}
}

// TestInterleaverDerivedStart: video that runs ahead of a derived audio
// track further than MaxWait waits for it while the Reader reads what
// arrived up to MaxWait past its start (the cached GOP, the transcoder's
// first packets), and goes out by the media time rule after that.
func TestInterleaverDerivedStart(t *testing.T) {
	video := &Track{Codec: H264, ClockRate: 90000}
	audio := &Track{Codec: AAC, ClockRate: 48000}
	for _, derived := range []bool{false, true} {
		var q interleaver
		q.init(video, audio, 200*time.Millisecond, derived)
		for i := range 10 { // 400 ms of cached video
			q.read(q.opened - int64(time.Second) + int64(i)*int64(40*time.Millisecond))
			q.push(&Unit{Track: video, PTS: int64(i) * 3600, Key: i == 0})
		}
		if u := q.pop(false); (u != nil) == derived {
			t.Fatalf("derived %v: video 400 ms ahead of no audio: %+v", derived, u)
		}
		if !derived {
			continue
		}
		q.read(q.opened + int64(100*time.Millisecond)) // the transcoder's first packets
		if u := q.pop(false); u != nil {
			t.Fatalf("video went out during the start: %+v", u)
		}
		q.read(q.opened + int64(300*time.Millisecond)) // live, past MaxWait
		if u := q.pop(false); u == nil || u.Track != video {
			t.Fatalf("after the start: %+v, want the video out", u)
		}
	}
}
