package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-media/sluice/internal/config"
)

// TestReadyzAndAdminListener: /readyz answers ready on the main listener,
// and the admin listener serves metrics, health, readiness and pprof.
func TestReadyzAndAdminListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	base := startServer(t, func(c *config.Config) { c.Admin.Listen = adminAddr })
	for _, c := range []struct {
		url, want string
	}{
		{base + "/readyz", "ready"},
		{base + "/healthz", "ok"},
		{"http://" + adminAddr + "/metrics", "sluice_sessions"},
		{"http://" + adminAddr + "/readyz", "ready"},
		{"http://" + adminAddr + "/debug/pprof/", "goroutine"},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), c.want) {
			t.Errorf("GET %s: %d, body without %q", c.url, resp.StatusCode, c.want)
		}
	}
}
