package tap

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// startSource is a stream on a hub whose Deriver is x: H264 (the clip),
// with video, and one audio track of codec from ("aac", "pcma" or "opus"),
// fed by feed(from, n) per 20 ms of media.
type startSource struct {
	s     *hubtest.Source
	audio int // the source audio track
	feed  func(from, n int)
}

func newStartSource(b testing.TB, x *Transcoders, name, from string, video bool) *startSource {
	h := hub.New(hub.Config{RingPackets: 8192, PLIMinInterval: time.Second, MaxViewersPerStream: 10, Deriver: x})
	if from == "opus" {
		s := hubtest.NewSource(b, h, name, video, true)
		b.Cleanup(s.Writer.End)
		return &startSource{s: s, audio: s.A, feed: s.Feed}
	}
	s := hubtest.NewSource(b, h, name, video, false)
	b.Cleanup(s.Writer.End)
	ss := &startSource{s: s}
	switch from {
	case "pcma":
		ss.audio = s.Writer.AddTrack(pcmaCodec)
		ss.feed = func(from, n int) {
			for i := from; i < n; i++ {
				feedPCMA(s.Writer, ss.audio, i, 1)
				if video && i%2 == 0 {
					s.Video(i / 2)
				}
			}
		}
	case "aac":
		codec, aus := aacTone(b, 2, 50)
		ss.audio = s.Writer.AddTrack(codec)
		ft, err := ingest.NewFrameTrack(codec, ss.audio, s.Writer, nil)
		if err != nil {
			b.Fatal(err)
		}
		next := 0 // AAC access units written
		ss.feed = func(from, n int) {
			for i := from; i < n; i++ {
				// AAC units of 1024 samples up to this 20 ms.
				for ; next*transcode.SamplesPerFrame <= i*960; next++ {
					pts := time.Duration(next) * transcode.SamplesPerFrame * time.Second / 48000
					if err := ft.Write(pts, pts, [][]byte{aus[next%len(aus)].Payload}); err != nil {
						b.Fatal(err)
					}
				}
				if video && i%2 == 0 {
					s.Video(i / 2)
				}
			}
		}
	}
	return ss
}

// aacTone encodes n AAC-LC access units of a tone with ch channels.
func aacTone(b testing.TB, ch, n int) (media.Codec, []transcode.AACFrame) {
	enc, err := transcode.NewFFmpegEncoder(ch, 64000*ch, transcode.DefaultAACOptions)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	var aus []transcode.AACFrame
	pcm := make([]float32, ch*transcode.SamplesPerFrame)
	for i := range n {
		for j := range pcm {
			t := float64(i*transcode.SamplesPerFrame+j/ch) / 48000
			pcm[j] = float32(0.3 * math.Sin(2*math.Pi*440*t))
		}
		if aus, err = enc.Encode(aus, pcm, int64(i*transcode.SamplesPerFrame)); err != nil {
			b.Fatal(err)
		}
	}
	asc, _ := enc.Config().Marshal()
	codec, err := ingest.AACCodec(asc)
	if err != nil {
		b.Fatal(err)
	}
	return codec, aus
}

// derivedTo is the index of the track derived from src in codec to.
func derivedTo(b testing.TB, st *hub.Stream, src int, to string) int {
	for _, t := range st.Derived(src) {
		if strings.EqualFold(t.Codec.Name(), to) || to == "aac" && isAAC(t.Codec) {
			return t.Index
		}
	}
	b.Fatalf("no %s track derived from track %d", to, src)
	return -1
}
