package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-media/sluice/internal/client"
)

// TestBadInput sends requests the server must refuse, each with its status
// code and a one-line text/plain reason, and checks that the server still
// takes a publisher afterwards.
func TestBadInput(t *testing.T) {
	base := startServer(t, nil)
	whipOffer := rawOffer(t, true)
	whepOffer := rawOffer(t, false)

	// A live session, for the requests on a session URL.
	pub, err := client.Publish(t.Context(), base+"/whip/live", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	const sdp = "application/sdp"
	cases := []struct {
		name        string
		method      string
		url         string
		contentType string
		body        string
		want        int
	}{
		{"wrong content type", http.MethodPost, base + "/whip/a", "text/plain", whipOffer, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, base + "/whip/a", "", whipOffer, http.StatusUnsupportedMediaType},
		{"malformed SDP", http.MethodPost, base + "/whip/a", sdp, "v=0\r\nthis is not SDP\r\n", http.StatusBadRequest},
		{"garbage", http.MethodPost, base + "/whip/a", sdp, "\x00\x01\x02\xff", http.StatusBadRequest},
		{"empty body", http.MethodPost, base + "/whip/a", sdp, "", http.StatusBadRequest},
		{"body over the limit", http.MethodPost, base + "/whip/a", sdp, whipOffer + strings.Repeat("a=x-pad:0123456789abcdef\r\n", 70_000/26), http.StatusRequestEntityTooLarge},
		{"GET on WHIP endpoint", http.MethodGet, base + "/whip/a", "", "", http.StatusMethodNotAllowed},
		{"PUT on session", http.MethodPut, pub.Location(), sdp, whipOffer, http.StatusMethodNotAllowed},
		{"WHEP for unknown stream", http.MethodPost, base + "/whep/nosuchstream", sdp, whepOffer, http.StatusNotFound},
		{"DELETE unknown session", http.MethodDelete, base + "/whip/live/nosuchsession", "", "", http.StatusNotFound},
		{"DELETE unknown stream", http.MethodDelete, base + "/whip/nosuchstream/nosuchsession", "", "", http.StatusNotFound},
		{"stream name of 300 chars", http.MethodPost, base + "/whip/" + strings.Repeat("a", 300), sdp, whipOffer, http.StatusBadRequest},
		{"stream name ..", http.MethodPost, base + "/whip/..", sdp, whipOffer, http.StatusBadRequest},
		{"stream name with a space", http.MethodPost, base + "/whip/a%20b", sdp, whipOffer, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := do(t, c.method, c.url, c.contentType, strings.NewReader(c.body))
			if status != c.want {
				t.Fatalf("status %d, want %d (body %q)", status, c.want, body)
			}
			if status == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if r := strings.TrimRight(body, "\n"); r == "" || strings.Contains(r, "\n") {
				t.Errorf("body %q is not one line", body)
			}
		})
	}

	// The server still works: the live publisher is untouched and a new
	// one is accepted.
	select {
	case <-pub.Done():
		t.Error("live publisher ended")
	default:
	}
	pub2, err := client.Publish(t.Context(), base+"/whip/after", client.PublishOptions{})
	if err != nil {
		t.Fatalf("good WHIP POST after the bad ones: %v", err)
	}
	if err := pub2.Close(); err != nil {
		t.Error(err)
	}
	if err := pub.Close(); err != nil {
		t.Error(err)
	}
}
