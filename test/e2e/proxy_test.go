package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-media/sluice/internal/config"
)

// postFrom posts a WHIP offer, with an X-Forwarded-For header when xff is
// not empty, and returns the status.
func postFrom(t *testing.T, url, offer, xff string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode // a session created is closed when the server stops
}

// TestClientAddressBehindProxy: with limits.max_sessions_per_ip 1, the
// limit holds clients by the address the trusted proxy names, ignores
// X-Forwarded-For from an address that is not a trusted proxy, and spares
// the exempt addresses (loopback by default).
func TestClientAddressBehindProxy(t *testing.T) {
	offer := rawOffer(t, true)
	for _, c := range []struct {
		name    string
		trusted []string
		exempt  []string
		posts   []string // X-Forwarded-For of each POST, in order
		want    []int
	}{
		{"loopback exempt by default", config.Loopback(), config.Loopback(),
			[]string{"", ""}, []int{201, 201}},
		{"no exemption: loopback limited", config.Loopback(), nil,
			[]string{"", ""}, []int{201, 429}},
		{"spoofed X-Forwarded-For from an untrusted address is ignored", nil, nil,
			[]string{"203.0.113.7", "203.0.113.8"}, []int{201, 429}},
		{"trusted proxy's clients limited one by one", config.Loopback(), config.Loopback(),
			[]string{"203.0.113.7", "203.0.113.8", "203.0.113.7"}, []int{201, 201, 429}},
		{"exemption applies to the resolved client", config.Loopback(), []string{"203.0.113.0/24"},
			[]string{"203.0.113.7", "203.0.113.7", "198.51.100.1", "198.51.100.1"}, []int{201, 201, 201, 429}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := startServer(t, func(cfg *config.Config) {
				cfg.Limits.MaxSessionsPerIP = 1
				cfg.HTTP.TrustedProxies = c.trusted
				cfg.Limits.PerIPExempt = c.exempt
			})
			for i, xff := range c.posts {
				if got := postFrom(t, base+"/whip/s"+string(rune('a'+i)), offer, xff); got != c.want[i] {
					t.Fatalf("POST %d (X-Forwarded-For %q): %d, want %d", i, xff, got, c.want[i])
				}
			}
			// The session's remote address, as the JSON API (and the
			// logs and events, from the same field) name it.
			_, _, body := do(t, http.MethodGet, base+"/v1/sessions", "", nil)
			var list struct {
				Sessions []struct {
					Stream string `json:"stream"`
					Remote string `json:"remote"`
				} `json:"sessions"`
			}
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatalf("/v1/sessions: %v: %s", err, body)
			}
			found := false
			for _, s := range list.Sessions {
				if s.Stream != "sa" {
					continue
				}
				found = true
				host, _, err := net.SplitHostPort(s.Remote)
				if err != nil {
					host = s.Remote
				}
				want := "127.0.0.1"
				if c.trusted != nil && c.posts[0] != "" {
					want = c.posts[0]
				}
				if host != want {
					t.Errorf("session of stream sa has remote %q, want %s", s.Remote, want)
				}
			}
			if !found {
				t.Errorf("no session of stream sa in /v1/sessions: %s", body)
			}
		})
	}
}
