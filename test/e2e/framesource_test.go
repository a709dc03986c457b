package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// startFrameNode is startServer that also gives the server's hub, where a
// frame source (as RTMP and SRT do) publishes.
func startFrameNode(t testing.TB, tweak func(*config.Config)) (string, *hub.Hub) {
	t.Helper()
	n := startNode(t, tweak, nodeOptions{closeWithin: 5 * time.Second})
	return n.base, n.Hub()
}

// framePublisher is a frame source's side of the hub: it cannot be asked
// for a keyframe (the GOP cache serves joiners).
type framePublisher struct{}

func (framePublisher) RequestKeyframe() {}

// frameFeed writes the clip through ingest.FrameTracks at real-time pace,
// as an RTMP source would: SPS and PPS out of band (SetParameterSets),
// access units without them, and an Opus packet every 20 ms.
type frameFeed struct {
	video, audio *ingest.FrameTrack
	clip         [][][]byte
	sps, pps     []byte

	mu   sync.Mutex
	sent [][][]byte // the access units as a viewer must get them
	err  error
}

func (f *frameFeed) run(ctx context.Context, total int) {
	start := time.Now()
	for i := 0; ; i++ {
		pts := time.Duration(i) * client.OpusFrameDuration
		if err := f.audio.Write(pts, pts, [][]byte{client.OpusTestPacket(uint16(i))}); err != nil {
			f.fail(err)
			return
		}
		if i%2 == 0 {
			n := i / 2
			if n == total {
				return
			}
			au := f.clip[n%len(f.clip)]
			in := slices.DeleteFunc(slices.Clone(au), func(nalu []byte) bool { t := nalu[0] & 0x1f; return t == 7 || t == 8 })
			want := in
			if client.IsIDR(au) {
				// The writer puts the parameter sets before the first slice.
				k := slices.IndexFunc(in, func(nalu []byte) bool { t := nalu[0] & 0x1f; return t >= 1 && t <= 5 })
				want = slices.Concat(in[:k], [][]byte{f.sps, f.pps}, in[k:])
			}
			if err := f.video.Write(pts, pts, in); err != nil {
				f.fail(err)
				return
			}
			f.mu.Lock()
			f.sent = append(f.sent, want)
			f.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(time.Duration(i+1) * client.OpusFrameDuration))):
		}
	}
}

func (f *frameFeed) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *frameFeed) result() ([][][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent), f.err
}

// TestFrameSourceToWHEPAndHLS publishes the clip as a frame source
// (access units through ingest.FrameTrack into the hub, parameter sets out
// of band) and reads it with a pion WHEP viewer and as LL-HLS: the viewer
// gets the access units byte for byte from a keyframe on, SPS and PPS in
// front of it, with RTP timestamps 40 ms apart, and the Opus packets
// unchanged; the LL-HLS segments are one GOP of H264 that ffprobe reads.
func TestFrameSourceToWHEPAndHLS(t *testing.T) {
	bin := needFFprobe(t)
	base, h := startFrameNode(t, func(c *config.Config) {
		c.HLS.SegmentDuration = time.Second
		c.HLS.PartDuration = 200 * time.Millisecond
	})
	clip := loadClip(t)
	sps, pps := clip[0][0], clip[0][1]
	if sps[0]&0x1f != 7 || pps[0]&0x1f != 8 {
		t.Fatal("the clip does not start with SPS and PPS")
	}
	vc, ac := ingest.H264Codec(sps, pps), ingest.OpusCodec(2)
	stW, err := h.Publish("frames", framePublisher{}, []media.Codec{vc, ac})
	if err != nil {
		t.Fatal(err)
	}
	video, err := ingest.NewFrameTrack(vc, stW.AddTrack(vc), stW, nil)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := ingest.NewFrameTrack(ac, stW.AddTrack(ac), stW, nil)
	if err != nil {
		t.Fatal(err)
	}
	video.SetParameterSets(sps, pps)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	f := &frameFeed{video: video, audio: audio, clip: clip, sps: sps, pps: pps}
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait(); stW.End() }()
	wg.Go(func() { f.run(fctx, 500) })

	// The first HLS request starts the muxer and waits for its first
	// segment; the WHEP viewer joins meanwhile.
	hlsBase := base + "/hls/frames/"
	var mv *playlist.Multivariant
	var hlsWG sync.WaitGroup
	hlsWG.Go(func() {
		code, body := httpGet(t, hlsBase+"index.m3u8")
		if code != http.StatusOK {
			t.Errorf("index.m3u8: %d %s", code, body)
			return
		}
		pl, err := playlist.Unmarshal(body)
		if m, ok := pl.(*playlist.Multivariant); err == nil && ok && len(m.Variants) == 1 {
			mv = m
			return
		}
		t.Errorf("index.m3u8 is not a multivariant playlist with one variant (%v):\n%s", err, body)
	})

	v, err := client.View(ctx, base+"/whep/frames", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var got []client.AccessUnit
	for len(got) < 30 {
		select {
		case au := <-v.AccessUnits():
			got = append(got, au)
		case <-ctx.Done():
			t.Fatalf("viewer got %d access units in time", len(got))
		}
	}
	var opus []client.OpusPacket
	for len(opus) < 50 {
		select {
		case p := <-v.OpusPackets():
			opus = append(opus, p)
		case <-ctx.Done():
			t.Fatalf("viewer got %d Opus packets in time", len(opus))
		}
	}
	sent, err := f.result()
	if err != nil {
		t.Fatal(err)
	}
	nalus := make([][][]byte, len(got))
	for i, au := range got {
		nalus[i] = au.NALUs
	}
	at := matchStart(sent, nalus)
	if at < 0 {
		t.Fatalf("the viewer's %d access units are no run of the %d written (first: %d NAL units)", len(got), len(sent), len(got[0].NALUs))
	}
	if !client.IsIDR(nalus[0]) {
		t.Errorf("the viewer's first access unit is not a keyframe")
	}
	if !slices.ContainsFunc(nalus[0], func(n []byte) bool { return n[0]&0x1f == 7 }) {
		t.Errorf("the viewer's first keyframe lacks the SPS given out of band")
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].RTPTimestamp - got[i-1].RTPTimestamp; d != 3600 {
			t.Errorf("access unit %d: RTP timestamp advanced %d, want 3600 (40 ms at 90 kHz)", at+i, d)
			break
		}
	}
	idx0, ok := client.OpusTestIndex(opus[0].Payload)
	for i, p := range opus {
		n, ok2 := client.OpusTestIndex(p.Payload)
		if !ok || !ok2 || n != idx0+uint16(i) || string(p.Payload) != string(client.OpusTestPacket(n)) {
			t.Fatalf("Opus packet %d: not test packet %d unchanged", i, idx0+uint16(i))
		}
		if i > 0 && p.RTPTimestamp-opus[i-1].RTPTimestamp != 960 {
			t.Fatalf("Opus packet %d: RTP timestamp advanced %d, want 960", i, p.RTPTimestamp-opus[i-1].RTPTimestamp)
		}
	}
	t.Logf("viewer: %d access units from written #%d, %d Opus packets from #%d, byte for byte", len(got), at, len(opus), idx0)

	// LL-HLS: three complete segments; the second (the first may start
	// wherever the muxer joined) is one GOP of the clip.
	hlsWG.Wait()
	if mv == nil {
		t.FailNow()
	}
	if codecs := strings.Join(mv.Variants[0].Codecs, ","); !strings.Contains(codecs, "avc1.42") {
		t.Errorf("CODECS=%q, want avc1 (constrained baseline)", codecs)
	}
	var pl *playlist.Media
	for {
		pl = mediaPlaylist(t, hlsBase+mv.Variants[0].URI)
		if len(fullSegments(pl)) >= 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fewer than 3 segments in time:\n%+v", pl)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if pl.Map == nil || pl.PartInf == nil {
		t.Fatal("media playlist without EXT-X-MAP or EXT-X-PART-INF: not LL-HLS")
	}
	seg := fullSegments(pl)[1]
	p := ffprobe(t, bin, fetchFMP4(t, hlsBase, pl.Map.URI, seg.URI, filepath.Join(t.TempDir(), "v.mp4")))
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 {
		t.Fatalf("video segment %s: %+v, want one h264 320x240 stream", seg.URI, p.Streams)
	}
	if n, _ := strconv.Atoi(p.Streams[0].NbFrames); n != clipGOP {
		t.Errorf("video segment %s has %s frames, want %d", seg.URI, p.Streams[0].NbFrames, clipGOP)
	}
	if _, err := f.result(); err != nil {
		t.Fatal(err)
	}
}
