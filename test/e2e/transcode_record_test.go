package e2e

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
	"github.com/sluice-media/sluice/internal/transcode"
)

// TestTranscodeRecordSync: streams recorded with an AAC track derived
// from their audio: Opus with sender reports of both tracks (as WebRTC
// publishers send), and G.711 without (as an RTSP camera may: audio placed
// by arrival). Decoded from the MP4 file, every tone burst starts where
// the video puts its stream second (the recording starts at a keyframe,
// on a whole second of stream time), within 40 ms.
func TestTranscodeRecordSync(t *testing.T) {
	needTranscode(t)
	for _, c := range []struct {
		name    string
		kind    audioKind
		reports bool
	}{{"opus", opusMono, true}, {"pcma", pcmaMono, false}} {
		t.Run(c.name, func(t *testing.T) { recordSync(t, c.kind, c.reports) })
	}
}

func recordSync(t *testing.T, kind audioKind, reports bool) {
	dir := t.TempDir()
	srv := startEdgeServer(t, func(c *config.Config) {
		c.Record.Rules = []record.Rule{{Streams: "rs", Dir: dir, Segment: 10 * time.Second}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	src := startHubSource(sctx, t, srv.Hub(), "rs", kind, reports)
	select {
	case <-time.After(3500 * time.Millisecond):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	stop()
	<-src.done
	waitMetrics(t, srv.base, "the recorder stopped with the stream", func(s metricSamples) bool {
		return s.get("sluice_recorders") == 0 && s.get("sluice_record_files_total") >= 1
	})
	files := recordings(t, dir)
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	var videoID, audioID int
	var asc []byte
	for _, tr := range init.Tracks {
		switch c := tr.Codec.(type) {
		case *codecs.MPEG4Audio:
			if tr.TimeScale != 48000 {
				t.Fatalf("audio time scale %d, want 48000", tr.TimeScale)
			}
			audioID = tr.ID
			if asc, err = c.Config.Marshal(); err != nil {
				t.Fatal(err)
			}
		case *codecs.H264:
			if tr.TimeScale != 90000 {
				t.Fatalf("video time scale %d, want 90000", tr.TimeScale)
			}
			videoID = tr.ID
		}
	}
	if videoID == 0 || audioID == 0 {
		t.Fatalf("recording %s: tracks %+v, want H264 and AAC", files[0], init.Tracks)
	}
	dec, err := transcode.NewAACDecoder(asc)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	video0 := int64(-1) // first video sample, 90 kHz
	audio0 := int64(-1) // first audio sample, 48 kHz
	var pcm []float32   // mono, from audio0
	for _, p := range parts {
		for _, pt := range p.Tracks {
			at := int64(pt.BaseTime)
			for _, s := range pt.Samples {
				switch pt.ID {
				case videoID:
					if video0 < 0 {
						video0 = at + int64(s.PTSOffset)
					}
				case audioID:
					if audio0 < 0 {
						audio0 = at
					}
					out, ch, err := dec.Decode(s.Payload)
					if err != nil {
						t.Fatal(err)
					}
					if ch != 1 && len(out) > 0 {
						t.Fatalf("%d channels, want mono (the publisher's)", ch)
					}
					if need := int(at-audio0) + len(out); need > len(pcm) {
						pcm = append(pcm, make([]float32, need-len(pcm))...)
					}
					copy(pcm[at-audio0:], out)
				}
				at += int64(s.Duration)
			}
		}
	}
	starts := onsets(pcm, 1, 48000)
	if len(starts) < 2 {
		t.Fatalf("%d tone onsets in %.1f s of recorded audio", len(starts), float64(len(pcm))/48000)
	}
	for _, at := range starts {
		// File time of the onset against the first video frame's, which
		// is a whole second of stream time.
		d := time.Duration(audio0+int64(at))*time.Second/48000 - time.Duration(video0)*time.Second/90000
		off := gridError(d, time.Second)
		t.Logf("tone onset %v after the first video frame (A/V offset %v)", d, off)
		if off.Abs() > 40*time.Millisecond {
			t.Errorf("tone onset %v after the first video frame: %v off its second, want within 40 ms", d, off)
		}
	}
}
