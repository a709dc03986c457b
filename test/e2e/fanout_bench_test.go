package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
)

// Fan-out benchmark parameters: one publisher at about 2.5 Mbit/s of H264
// plus 50 Opus packets/s, fifty viewers, a fixed measuring window.
const (
	fanoutViewers = 50
	fanoutAUBytes = 2_500_000 / 8 / 25 // bytes per access unit at 25 fps
	fanoutWarmup  = 3 * time.Second
	fanoutWindow  = 10 * time.Second
)

// BenchmarkFanout50 measures the CPU the sluice binary spends per RTP packet
// delivered to viewers. The server runs as its own process so that only its
// CPU is counted (from /proc/<pid>/stat); the publisher and the viewers run
// in the benchmark process. The work is done once, whatever b.N is; the
// results are reported as metrics:
//
//	server-µs/pkt          server CPU time / packets received by all viewers
//	delivered-pkts/s       packets received by all viewers per second
//	delivery-ratio         delivered / (sent × viewers)
//	server-CPU-%           server CPU time / wall time
//	server-RSS-KB/viewer   growth of the server's VmRSS from before the viewers joined
//	video-gaps             sequence gaps seen by all viewers in the window
func BenchmarkFanout50(b *testing.B) { fanout50(b, false) }

// BenchmarkFanout50Simulcast is BenchmarkFanout50 with a simulcast
// publisher: the top layer as heavy as BenchmarkFanout50's stream, two
// smaller ones beside it, and viewers that send TWCC feedback, from which
// the server's per-viewer estimate brings each of them to the top layer
// during the (longer) warm-up. Compare its server-µs/pkt and
// server-RSS-KB/viewer with BenchmarkFanout50's from the same run: the
// difference is what simulcast costs a viewer (estimator, TWCC sequence
// numbers, other layers' packets passed over).
func BenchmarkFanout50Simulcast(b *testing.B) { fanout50(b, true) }

func fanout50(b *testing.B, simulcast bool) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the server's CPU time and RSS from /proc: Linux only")
	}
	clip := loadClip(b)
	bin := filepath.Join(b.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluice-media/sluice/cmd/sluice")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}

	httpPort, udpPort := freePort(b, "tcp"), freePort(b, "udp")
	var serverLog bytes.Buffer
	cmd := exec.Command(bin,
		"-http.listen", "127.0.0.1:"+strconv.Itoa(httpPort),
		"-webrtc.udp_port", strconv.Itoa(udpPort),
		"-webrtc.listen_ips", "127.0.0.1",
		"-rtmp.listen", "127.0.0.1:0", "-srt.listen", "127.0.0.1:0",
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
	popts := client.PublishOptions{}
	if simulcast {
		popts.Simulcast = scRIDs
	}
	pub, err := client.Publish(ctx, base+"/whip/bench", popts)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, clip, 0)
	f.pad = fanoutAUBytes
	feedCtx, stopFeed := context.WithCancel(ctx)
	if simulcast {
		sizes := map[string]int{"q": fanoutAUBytes / 10, "h": fanoutAUBytes / 3, "f": fanoutAUBytes}
		fed := simulcastFeedSized(feedCtx, pub, clip, sizes)
		defer func() { stopFeed(); <-fed }()
		time.Sleep(time.Second)
	} else {
		go f.run(feedCtx)
		defer func() { stopFeed(); <-f.done }()
		<-f.sentAU(25)
	}

	pid := cmd.Process.Pid
	rss0 := readRSSKB(b, pid)

	viewers := make([]*client.Viewer, fanoutViewers)
	defer func() {
		for _, v := range viewers {
			if v != nil {
				_ = v.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, fanoutViewers)
	sem := make(chan struct{}, 10) // joins in flight
	for i := range viewers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := client.View(ctx, base+"/whep/bench", client.ViewOptions{CountOnly: true, CongestionFeedback: simulcast})
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

	if simulcast {
		time.Sleep(3 * fanoutWarmup) // the estimates climb to the top layer
	} else {
		time.Sleep(fanoutWarmup)
	}
	count := func() (pkts, gaps uint64) {
		for _, v := range viewers {
			s := v.Stats()
			pkts += s.VideoPackets + s.AudioPackets
			gaps += s.VideoGaps
		}
		return pkts, gaps
	}
	sentPackets := pub.SentPackets
	if simulcast {
		// What a viewer of the top layer should get: that layer and audio.
		sentPackets = func() (uint64, uint64) {
			_, a := pub.SentPackets()
			return pub.LayerSentPackets(slices.Index(scRIDs, "f")), a
		}
	}
	sentV0, sentA0 := sentPackets()
	pkts0, _ := count()
	cpu0 := readCPUTicks(b, pid)
	t0 := time.Now()
	b.ResetTimer()

	time.Sleep(fanoutWindow)

	b.StopTimer()
	cpu1 := readCPUTicks(b, pid)
	wall := time.Since(t0)
	pkts1, _ := count()
	sentV1, sentA1 := sentPackets()
	rss1 := readRSSKB(b, pid)
	if _, _, err := f.result(); err != nil {
		b.Fatalf("feed: %v", err)
	}

	delivered := float64(pkts1 - pkts0)
	sent := float64(sentV1 - sentV0 + sentA1 - sentA0)
	cpu := float64(cpu1-cpu0) / clockTicks(b)
	if delivered == 0 {
		b.Fatal("viewers received nothing")
	}
	_, gaps := count()
	b.ReportMetric(cpu*1e6/delivered, "server-µs/pkt")
	b.ReportMetric(delivered/wall.Seconds(), "delivered-pkts/s")
	b.ReportMetric(delivered/(sent*fanoutViewers), "delivery-ratio")
	b.ReportMetric(cpu/wall.Seconds()*100, "server-CPU-%")
	b.ReportMetric(float64(rss1-rss0)/fanoutViewers, "server-RSS-KB/viewer")
	b.ReportMetric(float64(gaps), "video-gaps")
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort(b *testing.B, network string) int {
	b.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHTTP polls url until it answers 200, the process exits, or 15 s pass.
func waitHTTP(b *testing.B, url string, exited <-chan error) {
	b.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer within 15 s: %v", url, err)
		}
		select {
		case err := <-exited:
			b.Fatalf("sluice exited before serving: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readCPUTicks returns utime+stime of pid in clock ticks (proc(5)).
func readCPUTicks(b *testing.B, pid int) uint64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields are counted from the last ')'.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseUint(fields[14-3], 10, 64)
	stime, err2 := strconv.ParseUint(fields[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return utime + stime
}

// readRSSKB returns VmRSS of pid in KiB.
func readRSSKB(b *testing.B, pid int) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// clockTicks is the kernel's USER_HZ (getconf CLK_TCK), 100 on every Linux
// port that Go supports when getconf is missing.
func clockTicks(b *testing.B) float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	b.Log("getconf CLK_TCK failed; assuming 100")
	return 100
}
