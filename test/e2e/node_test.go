package e2e

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/server"
)

// node is a sluice running in the test process on loopback, with
// OS-picked ports: the one helper behind startServer, startEdgeServer and
// startClusterNode.
type node struct {
	*server.Server
	id    string // cluster node ID, named in its log lines and errors; "" for a lone server
	base  string // base URL: https:// when the configuration sets a TLS certificate
	close func() // stops it early (a node dying); the test's cleanup stops it otherwise
}

// nodeOptions are how tests differ in starting a node.
type nodeOptions struct {
	id          string        // see node.id
	quiet       bool          // discard the log (fuzzing, where every input is a logged refusal)
	closeWithin time.Duration // if > 0, a Close that takes longer fails the test
}

// startNode runs a server on 127.0.0.1 (HTTP and WebRTC, ports picked by
// the OS) with the default configuration, changed first by tweak if not
// nil, and its log sent to t.Log.
func startNode(t testing.TB, tweak func(*config.Config), opt nodeOptions) *node {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPPort = 0
	cfg.WebRTC.ListenIPs = []string{"127.0.0.1"}
	cfg.RTSP = config.RTSP{Listen: "127.0.0.1:0"} // TCP only: RTSP's UDP ports are fixed pairs
	cfg.RTMP.Listen, cfg.SRT.Listen = "127.0.0.1:0", "127.0.0.1:0"
	if tweak != nil {
		tweak(&cfg)
	}
	w := &testLogWriter{t: t}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if opt.id != "" {
		log = log.With("test_node", opt.id)
	}
	if opt.quiet {
		w.stop()
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http://"
	if cfg.HTTP.TLSCert != "" {
		scheme = "https://"
	}
	n := &node{Server: srv, id: opt.id, base: scheme + srv.HTTPAddr().String()}
	n.close = sync.OnceFunc(func() {
		start := time.Now()
		if err := srv.Close(); err != nil {
			t.Errorf("%s Close: %v", n.name(), err)
		}
		if d := time.Since(start); opt.closeWithin > 0 && d > opt.closeWithin {
			t.Errorf("%s Close took %v, want under %v", n.name(), d, opt.closeWithin)
		}
		w.stop()
	})
	t.Cleanup(n.close)
	return n
}

// name is how errors name the node.
func (n *node) name() string {
	if n.id == "" {
		return "server"
	}
	return "node " + n.id
}

// waitSessions waits until the node holds want sessions (publishers,
// viewers and other nodes' pulls): sessions end on pion's goroutines,
// shortly after the request that ended them.
func (n *node) waitSessions(t testing.TB, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for n.Sessions() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d sessions after %v, want %d", n.name(), n.Sessions(), d, want)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter: no event to wait on
	}
}
