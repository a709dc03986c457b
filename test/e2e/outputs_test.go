package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// TestOutputsShareTranscoder: a stream served as LL-HLS and recorded at
// the same time has one Opus→AAC transcoder, not one per output, which
// goes on while one of them still needs it; the
// output metrics count muxers, recorders, segments, files and bytes; and
// the publisher's channel count holds end to end: stereo=1 in its fmtp
// gives stereo AAC in HLS and in the recording and stereo=1 in a WHEP
// viewer's answer, without it everything is mono. When the stream ends,
// everything stops.
func TestOutputsShareTranscoder(t *testing.T) {
	bin := needFFprobe(t)
	if !wantAAC(t) {
		t.Skip("transcoding unavailable: nothing to share")
	}
	for _, c := range []struct {
		name     string
		fmtp     string
		channels int
	}{
		{"mono", "", 1},
		{"stereo", "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base := startServer(t, func(cfg *config.Config) {
				cfg.HLS.SegmentDuration = time.Second
				cfg.Record.Rules = []record.Rule{{Streams: "out", Dir: dir, Segment: time.Second}}
				cfg.Stream.ReconnectGrace = 0
			})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			pub, err := client.Publish(ctx, base+"/whip/out", client.PublishOptions{OpusFmtp: c.fmtp})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			f := newFeed(pub, loadClip(t), 0)
			fctx, stop := context.WithCancel(ctx)
			stopped := false
			defer func() {
				if !stopped {
					stop()
					<-f.done
				}
			}()
			go f.run(fctx)
			<-f.sentAU(1)

			// WHEP: the answer keeps the publisher's stereo signalling.
			code, hdr, answer := do(t, http.MethodPost, base+"/whep/out", "application/sdp", strings.NewReader(rawOffer(t, false)))
			if code != http.StatusCreated {
				t.Fatalf("WHEP POST: %d %s", code, answer)
			}
			if got := strings.Contains(answer, "stereo=1"); got != (c.channels == 2) {
				t.Errorf("WHEP answer has stereo=1: %v, want %v:\n%s", got, c.channels == 2, answer)
			}
			if loc := hdr.Get("Location"); loc != "" {
				do(t, http.MethodDelete, base+loc, "", nil)
			}

			// HLS starts on its first request; recording started with the
			// stream.
			if code, body := httpGet(t, base+"/hls/out/index.m3u8"); code != http.StatusOK {
				t.Fatalf("index.m3u8: %d %s", code, body)
			}
			s := waitMetrics(t, base, "HLS and recording running, a file and segments done", func(s metricSamples) bool {
				return s.get("sluice_hls_muxers") == 1 && s.get("sluice_recorders") == 1 &&
					s.get("sluice_record_files_total") >= 1 && s.get("sluice_hls_segments_total") >= 1
			})
			if n := s.get(`sluice_transcoders{from="opus",to="aac"}`); n != 1 {
				t.Errorf("sluice_transcoders = %v with HLS and recording of one stream, want 1 (shared)", n)
			}
			if s.get("sluice_record_bytes_total") < 10000 || s.get("sluice_transcoded_audio_seconds_total") < 0.5 {
				t.Errorf("bytes recorded %v, audio transcoded %v s: want some of each",
					s.get("sluice_record_bytes_total"), s.get("sluice_transcoded_audio_seconds_total"))
			}
			// Live: the transcoder trails the packets' arrival by its own
			// work and the outputs' pace, well under a second here.
			if lag := s.get("sluice_transcoder_lag_seconds"); lag <= 0 || lag > 2 {
				t.Errorf("sluice_transcoder_lag_seconds = %v, want a little above 0", lag)
			}
			if s.get("sluice_record_errors_total") != 0 || s.get("sluice_transcode_errors_total") != 0 {
				t.Errorf("errors: recording %v, transcoding %v", s.get("sluice_record_errors_total"), s.get("sluice_transcode_errors_total"))
			}

			files := recordings(t, dir)
			p := ffprobe(t, bin, files[0])
			for _, st := range p.Streams {
				if st.CodecType == "audio" && (st.CodecName != "aac" || st.Channels != c.channels) {
					t.Errorf("recording %s: audio %s with %d channels, want aac with %d", files[0], st.CodecName, st.Channels, c.channels)
				}
			}
			seg := hlsAudioSegment(t, base+"/hls/out/")
			p = ffprobe(t, bin, seg)
			if len(p.Streams) != 1 || p.Streams[0].CodecName != "aac" || p.Streams[0].Channels != c.channels {
				t.Errorf("HLS audio: %+v, want aac with %d channels", p.Streams, c.channels)
			}

			// Recording off: HLS still needs the transcoder, which goes on.
			if code, st := setRecording(t, base, "out", `{"enabled": false}`); code != http.StatusOK || st.Recording {
				t.Fatalf("switch off: %d %+v", code, st)
			}
			s = waitMetrics(t, base, "recorder stopped", func(s metricSamples) bool { return s.get("sluice_recorders") == 0 })
			if s.get(`sluice_transcoders{from="opus",to="aac"}`) != 1 || s.get("sluice_hls_muxers") != 1 {
				t.Errorf("after switching recording off: %v transcoders, %v muxers, want 1 and 1",
					s.get(`sluice_transcoders{from="opus",to="aac"}`), s.get("sluice_hls_muxers"))
			}

			// The publisher leaves: the stream ends, and with it the
			// muxer and the transcoder.
			stop()
			<-f.done
			stopped = true
			pub.Close()
			waitMetrics(t, base, "outputs stopped", func(s metricSamples) bool {
				return s.get("sluice_hls_muxers") == 0 && s.get("sluice_recorders") == 0 && s.get(`sluice_transcoders{from="opus",to="aac"}`) == 0
			})
		})
	}
}

// hlsAudioSegment fetches the audio rendition's init file and first full
// segment of an LL-HLS stream and returns them as one MP4 file.
func hlsAudioSegment(t testing.TB, hlsBase string) string {
	t.Helper()
	code, body := httpGet(t, hlsBase+"index.m3u8")
	if code != http.StatusOK {
		t.Fatalf("index.m3u8: %d", code)
	}
	var uri string
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "#EXT-X-MEDIA:") && strings.Contains(line, "TYPE=AUDIO") {
			if _, rest, ok := strings.Cut(line, `URI="`); ok {
				uri, _, _ = strings.Cut(rest, `"`)
			}
		}
	}
	if uri == "" {
		t.Fatalf("no audio rendition:\n%s", body)
	}
	m := mediaPlaylist(t, hlsBase+uri)
	segs := fullSegments(m)
	if len(segs) == 0 || m.Map == nil {
		t.Fatalf("audio playlist without a full segment or init: %+v", m)
	}
	return fetchFMP4(t, hlsBase, m.Map.URI, segs[0].URI, t.TempDir()+"/audio.mp4")
}
