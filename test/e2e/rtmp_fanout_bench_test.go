package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/sluice-media/sluice/internal/client"
)

// BenchmarkFanoutRTMPvsWHIP measures the sluice binary's CPU per RTP
// packet delivered to 200 WHEP viewers (issue 24's figure; fifty in
// BenchmarkFanout50) of one stream published by RTMP
// (access units packetized by sluice's frame writer) and by WHIP (RTP
// relayed), in one run so that the two compare: the same clip padded to
// BenchmarkFanout50's 2.5 Mbit/s, video only. Each sub-benchmark builds
// and runs its own server; the work is done once whatever b.N is.
//
//	server-µs/pkt       server CPU time / video packets received by all viewers
//	delivered-pkts/s    video packets received by all viewers per second
//	pkts/s/viewer       the same per viewer (how finely each side packetizes)
//	video-gaps          sequence gaps seen by all viewers in the window
func BenchmarkFanoutRTMPvsWHIP(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the server's CPU time from /proc: Linux only")
	}
	clip := loadClip(b)
	bin := filepath.Join(b.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-media/sluice/cmd/sluice").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, proto := range []string{"rtmp", "whip"} {
		b.Run(proto, func(b *testing.B) { fanoutFrom(b, bin, proto, clip, rtmpFanoutViewers) })
	}
}

// rtmpFanoutViewers is the number of WHEP viewers in
// BenchmarkFanoutRTMPvsWHIP.
const rtmpFanoutViewers = 200

func fanoutFrom(b *testing.B, bin, proto string, clip [][][]byte, nViewers int) {
	httpPort, udpPort, rtmpPort := freePort(b, "tcp"), freePort(b, "udp"), freePort(b, "tcp")
	var serverLog bytes.Buffer
	cmd := exec.Command(bin,
		"-http.listen", "127.0.0.1:"+strconv.Itoa(httpPort),
		"-webrtc.udp_port", strconv.Itoa(udpPort),
		"-webrtc.listen_ips", "127.0.0.1",
		"-rtmp.listen", "127.0.0.1:"+strconv.Itoa(rtmpPort), "-srt.listen", "127.0.0.1:0",
		"-rtsp.listen", "127.0.0.1:0", "-rtsp.udp_rtp_port", "0", "-rtsp.udp_rtcp_port", "0",
		"-log.level", "warn")
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			b.Error("sluice did not stop within 10 s of SIGTERM")
		}
		if b.Failed() {
			b.Logf("server log:\n%s", serverLog.String())
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(b, base+"/healthz", exited)

	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
	defer cancel()
	var write func(i int, au [][]byte) error
	switch proto {
	case "rtmp":
		u, _ := url.Parse(fmt.Sprintf("rtmp://127.0.0.1:%d/live/bench", rtmpPort))
		conn := &gortmplib.Client{URL: u, Publish: true}
		if err := conn.Initialize(ctx); err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		var sps, pps []byte
		for _, n := range clip[0] {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = n
			case h264.NALUTypePPS:
				pps = n
			}
		}
		track := &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
		w := &gortmplib.Writer{Conn: conn, Tracks: []*gortmplib.Track{track}}
		if err := w.Initialize(); err != nil {
			b.Fatal(err)
		}
		write = func(i int, au [][]byte) error {
			pts := time.Duration(i) * frameDuration
			return w.WriteH264(track, pts, pts, au)
		}
	case "whip":
		pub, err := client.Publish(ctx, base+"/whip/bench", client.PublishOptions{NoAudio: true})
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		write = func(i int, au [][]byte) error { return pub.WriteH264(au, time.Duration(i)*frameDuration) }
	}
	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := make(chan error, 1)
	go func() {
		start := time.Now()
		for i := 0; ; i++ {
			if err := write(i, padAU(clip[i%len(clip)], fanoutAUBytes)); err != nil {
				fed <- err
				return
			}
			select {
			case <-feedCtx.Done():
				fed <- nil
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * frameDuration))):
			}
		}
	}()
	defer func() {
		stopFeed()
		if err := <-fed; err != nil {
			b.Errorf("feed: %v", err)
		}
	}()
	time.Sleep(3 * time.Second) // RTMP's track analysis reads 2 s

	viewers := make([]*client.Viewer, nViewers)
	defer func() {
		for _, v := range viewers {
			if v != nil {
				_ = v.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, nViewers)
	sem := make(chan struct{}, 10)
	for i := range viewers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := client.View(ctx, base+"/whep/bench", client.ViewOptions{CountOnly: true, NoAudio: true})
			if err != nil {
				errs <- err
				return
			}
			viewers[i] = v
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	time.Sleep(fanoutWarmup)
	count := func() (pkts, gaps uint64) {
		for _, v := range viewers {
			s := v.Stats()
			pkts += s.VideoPackets
			gaps += s.VideoGaps
		}
		return pkts, gaps
	}
	pid := cmd.Process.Pid
	pkts0, gaps0 := count()
	cpu0 := readCPUTicks(b, pid)
	t0 := time.Now()
	b.ResetTimer()
	time.Sleep(fanoutWindow)
	b.StopTimer()
	cpu1 := readCPUTicks(b, pid)
	wall := time.Since(t0)
	pkts1, gaps1 := count()
	delivered := float64(pkts1 - pkts0)
	if delivered == 0 {
		b.Fatal("viewers received nothing")
	}
	cpu := float64(cpu1-cpu0) / clockTicks(b)
	b.ReportMetric(cpu*1e6/delivered, "server-µs/pkt")
	b.ReportMetric(delivered/wall.Seconds(), "delivered-pkts/s")
	b.ReportMetric(delivered/wall.Seconds()/float64(nViewers), "pkts/s/viewer")
	b.ReportMetric(float64(gaps1-gaps0), "video-gaps")
}
