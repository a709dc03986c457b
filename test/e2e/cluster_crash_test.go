package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/cluster/redistest"
)

// clusterProc is a sluice process of a test cluster.
type clusterProc struct {
	id     string
	base   string
	cmd    *exec.Cmd
	exited chan error
	mu     sync.Mutex
	log    bytes.Buffer
}

func (p *clusterProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

// startClusterProc runs the sluice binary bin as node id of the cluster on
// redis, on loopback ports of its own. It is stopped (SIGTERM) when the
// test ends, and its log is shown if the test failed.
func startClusterProc(t *testing.T, bin, redis, id string) *clusterProc {
	t.Helper()
	httpPort := freeLoopbackPort(t)
	p := &clusterProc{id: id, base: fmt.Sprintf("http://127.0.0.1:%d", httpPort), exited: make(chan error, 1)}
	p.cmd = exec.Command(bin,
		"-http.listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"-webrtc.udp_port", "0",
		"-rtmp.listen", "127.0.0.1:0", "-srt.listen", "127.0.0.1:0",
		"-webrtc.listen_ips", "127.0.0.1",
		"-rtsp.listen", "127.0.0.1:0", "-rtsp.udp_rtp_port", "0", "-rtsp.udp_rtcp_port", "0",
		"-stream.reconnect_grace", "15s",
		"-cluster.redis", redis,
		"-cluster.node_id", id,
		"-cluster.secret", clusterSecret,
		"-cluster.lease_ttl", clusterTTL.String(),
		"-cluster.linger", "1s")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("node %s did not stop within 10 s of SIGTERM", id)
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("node %s log:\n%s", id, p.log.String())
			p.mu.Unlock()
		}
	})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := hc.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not answer within 15 s: %v", id, err)
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("node %s exited before serving: %v\n%s", id, err, p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestClusterOwnerCrash: three sluice processes and Redis. A publisher on
// A, viewers on B and C (edges). A is killed (SIGKILL: no goodbye, its
// lease just stops being renewed); once the lease expires the publisher
// republishes on B, and the viewers on B and C continue on their
// PeerConnections from B's first keyframe, with continuous sequence
// numbers.
func TestClusterOwnerCrash(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	redis := redistest.Start(t)
	bin := filepath.Join(t.TempDir(), "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-media/sluice/cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	a := startClusterProc(t, bin, redis, "a")
	b := startClusterProc(t, bin, redis, "b")
	c := startClusterProc(t, bin, redis, "c")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	clip := loadClip(t)

	pubA, err := client.Publish(ctx, a.base+"/whip/cam", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pubA.Close()
	feedA, stopA := context.WithCancel(ctx)
	defer stopA()
	fa := looseFeed(feedA, pubA, clip)
	defer func() { stopA(); <-fa }()

	watchC := newSeqWatch()
	vB, err := client.View(ctx, b.base+"/whep/cam", client.ViewOptions{})
	if err != nil {
		t.Fatalf("viewer on B: %v", err)
	}
	defer vB.Close()
	vC, err := client.View(ctx, c.base+"/whep/cam", client.ViewOptions{OnRTP: watchC.onRTP})
	if err != nil {
		t.Fatalf("viewer on C: %v", err)
	}
	defer vC.Close()
	for name, v := range map[string]*client.Viewer{"B": vB, "C": vC} {
		if n := receiveAUs(v, 10, 10*time.Second); n < 10 {
			t.Fatalf("edge %s: %d of 10 frames", name, n)
		}
	}

	// Kill A: no DELETE, no lease release, no goodbye to the edges.
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	a.exited <- nil // for the cleanup
	killed := time.Now()
	stopA()
	<-fa
	drainQuiet(t, vB, 300*time.Millisecond)
	drainQuiet(t, vC, 300*time.Millisecond)

	// B may claim the stream once A's lease expires (409 until then).
	var pubB *client.Publisher
	conflicts := 0
	for {
		pubB, err = client.Publish(ctx, b.base+"/whip/cam", client.PublishOptions{})
		if err == nil {
			break
		}
		if client.StatusOf(err) != http.StatusConflict || time.Since(killed) > 4*clusterTTL {
			t.Fatalf("republish on B %v after the kill: %v", time.Since(killed), err)
		}
		conflicts++
		time.Sleep(100 * time.Millisecond)
	}
	defer pubB.Close()
	claimed := time.Since(killed)
	// A renewed its lease every third of the TTL, so it lasted at least
	// two thirds of it after the kill: an earlier claim would mean the
	// lease was released, which a killed node cannot do.
	if claimed < 2*clusterTTL/3 {
		t.Errorf("B claimed the stream %v after A died, before A's lease (%v) could expire", claimed, clusterTTL)
	}
	t.Logf("B's publisher got 409 %d times before A's lease expired", conflicts)
	before, _ := watchC.snapshot()
	fb := newFeed(pubB, append(clip[10:], clip...), 0)
	feedB, stopB := context.WithCancel(ctx)
	go fb.run(feedB)
	defer func() { stopB(); <-fb.done }()

	for name, v := range map[string]*client.Viewer{"B": vB, "C": vC} {
		if au := firstAU(t, v, 15*time.Second); !client.IsIDR(au.NALUs) {
			t.Errorf("edge %s: first frame after the crash is not a keyframe", name)
		}
		t.Logf("edge %s resumed %v after A was killed (B claimed the stream after %v)", name, time.Since(killed).Round(time.Millisecond), claimed.Round(time.Millisecond))
		if n := receiveAUs(v, 10, 10*time.Second); n < 10 {
			t.Fatalf("edge %s after the crash: %d of 10 frames", name, n)
		}
		select {
		case <-v.Done():
			t.Fatalf("viewer on %s lost its connection", name)
		default:
		}
	}
	after, maxJump := watchC.snapshot()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if after[k] <= before[k] {
			t.Errorf("C %s: no packets after the crash", k)
		}
		if maxJump[k] > 1 {
			t.Errorf("C %s: sequence numbers jumped by %d across the crash", k, maxJump[k])
		}
	}
}
