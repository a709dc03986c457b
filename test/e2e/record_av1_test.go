package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	mcav1 "github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// av1Clip reads testdata's AV1 clip (a low overhead OBU stream) into
// temporal units without their temporal delimiters, as RTP carries them.
func av1Clip(t *testing.T) [][][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "av1_main_320x240_25fps_3s.obu"))
	if err != nil {
		t.Fatal(err)
	}
	var bs mcav1.Bitstream
	if err := bs.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	var tus [][][]byte
	for _, obu := range bs {
		switch mcav1.OBUType(obu[0] >> 3 & 0x0f) {
		case mcav1.OBUTypeTemporalDelimiter:
			tus = append(tus, nil)
		default:
			if len(tus) == 0 {
				tus = append(tus, nil)
			}
			tus[len(tus)-1] = append(tus[len(tus)-1], obu)
		}
	}
	return tus
}

// TestRecordAV1: an AV1 publisher (libaom's temporal units, packetized by
// gortsplib's AV1 encoder) is recorded to fMP4 files that ffprobe reads
// as AV1 of the published size, with every frame.
func TestRecordAV1(t *testing.T) {
	bin := needFFprobe(t)
	clip := av1Clip(t)
	if len(clip) != 75 {
		t.Fatalf("clip has %d temporal units, want 75", len(clip))
	}
	dir := t.TempDir()
	base := startServer(t, func(c *config.Config) {
		c.Record.Rules = []record.Rule{{Streams: "av1-*", Dir: dir, Segment: time.Second}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	av1 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: vp9av1Feedback}, PayloadType: 45}
	track, status, body := rawPublisher(t, base+"/whip/av1-cam", []webrtc.RTPCodecParameters{av1})
	if status != 201 {
		t.Fatalf("WHIP POST: %d %s", status, body)
	}
	enc := &rtpav1.Encoder{PayloadType: 45}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	fed := make(chan struct{})
	feedCtx, stop := context.WithCancel(ctx)
	go func() {
		defer close(fed)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 500; i++ {
			pkts, err := enc.Encode(clip[i%len(clip)])
			if err != nil {
				t.Error(err)
				return
			}
			for _, p := range pkts {
				p.Timestamp = uint32(i * 3600)
				if err := track.WriteRTP(p); err != nil {
					return
				}
			}
			select {
			case <-feedCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stop(); <-fed }()

	var files []string
	for len(files) < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("files after 25 s: %v", files)
		case <-time.After(100 * time.Millisecond):
		}
		files = recordings(t, dir)
	}
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,width,height,nb_read_frames", "-of", "json", files[0]).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", files[0], err)
	}
	var probe struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	s := probe.Streams[0]
	t.Logf("%s: %+v", filepath.Base(files[0]), s)
	frames, _ := strconv.Atoi(s.NbReadFrames)
	// A one-second segment at 25 fps, cut at keyframes every 25 frames.
	if s.CodecName != "av1" || s.Width != 320 || s.Height != 240 || frames < 20 || frames > 55 {
		t.Errorf("%s: %+v, want av1 320x240 with about 25 frames", files[0], s)
	}
}

// TestHLSAV1: the same AV1 publisher is served as LL-HLS (av01 in the
// multivariant playlist), whose fMP4 segments ffprobe reads as AV1 of the
// published size, one group of pictures each.
func TestHLSAV1(t *testing.T) {
	bin := needFFprobe(t)
	clip := av1Clip(t)
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	av1 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: vp9av1Feedback}, PayloadType: 45}
	track, status, body := rawPublisher(t, base+"/whip/av1hls", []webrtc.RTPCodecParameters{av1})
	if status != 201 {
		t.Fatalf("WHIP POST: %d %s", status, body)
	}
	enc := &rtpav1.Encoder{PayloadType: 45}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	fed := make(chan struct{})
	feedCtx, stop := context.WithCancel(ctx)
	go func() {
		defer close(fed)
		start := time.Now()
		for i := 0; i < 500; i++ {
			pkts, err := enc.Encode(clip[i%len(clip)])
			if err != nil {
				t.Error(err)
				return
			}
			for _, p := range pkts {
				p.Timestamp = uint32(i * 3600)
				if err := track.WriteRTP(p); err != nil {
					return
				}
			}
			select {
			case <-feedCtx.Done():
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * frameDuration))):
			}
		}
	}()
	defer func() { stop(); <-fed }()

	hlsBase := base + "/hls/av1hls/"
	code, index := httpGet(t, hlsBase+"index.m3u8")
	if code != http.StatusOK || !strings.Contains(string(index), "av01.") {
		t.Fatalf("index.m3u8: %d, want CODECS with av01:\n%s", code, index)
	}
	var video *playlist.Media
	for {
		video = mediaPlaylist(t, hlsBase+"video1_stream.m3u8")
		if len(fullSegments(video)) >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("fewer than 2 segments in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
	seg := fullSegments(video)[1]
	p := ffprobe(t, bin, fetchFMP4(t, hlsBase, video.Map.URI, seg.URI, filepath.Join(t.TempDir(), "av1.mp4")))
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "av1" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 {
		t.Fatalf("segment %s: %+v, want one av1 320x240 stream", seg.URI, p.Streams)
	}
	if n, _ := strconv.Atoi(p.Streams[0].NbFrames); n != clipGOP {
		t.Errorf("segment %s has %s frames, want %d", seg.URI, p.Streams[0].NbFrames, clipGOP)
	}
}
