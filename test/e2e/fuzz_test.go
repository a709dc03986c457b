package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

// The fuzz targets run their seeds (testdata/fuzz/Fuzz*, plus a fresh pion
// offer) as ordinary tests; `go test -run '^$' -fuzz FuzzWHIPOffer
// ./test/e2e/` explores further. Each input runs against one real server,
// which must answer with one of the documented statuses, keep no session
// once the input's session is DELETEd, and go on answering.

// FuzzWHIPOffer posts each input as a WHIP offer.
func FuzzWHIPOffer(f *testing.F) {
	srv := newEdgeServer(f, nil, true)
	offer := rawOffer(f, true)
	f.Add(offer)
	f.Add(offer[:len(offer)/3])
	f.Fuzz(func(t *testing.T, body string) {
		r := send(t, nil, http.MethodPost, srv.base+"/whip/fuzz", map[string]string{"Content-Type": sdpType}, body)
		if !slices.Contains([]int{http.StatusCreated, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusRequestEntityTooLarge}, r.status) {
			t.Fatalf("status %d (%q) for offer %.200q", r.status, r.body, body)
		}
		if r.status == http.StatusCreated {
			var d sdp.SessionDescription
			if err := d.UnmarshalString(r.body); err != nil {
				t.Errorf("201 with an answer that is not SDP: %v", err)
			}
			if d := send(t, nil, http.MethodDelete, srv.base+r.header.Get("Location"), nil, ""); d.status != http.StatusOK {
				t.Errorf("DELETE: %d %s", d.status, d.body)
			}
		}
		srv.waitSessions(t, 0, 5*time.Second)
		if h := send(t, nil, http.MethodGet, srv.base+"/healthz", nil, ""); h.status != http.StatusOK {
			t.Fatalf("healthz %d after offer %.200q", h.status, body)
		}
	})
}

// FuzzWHIPPatch creates a WHIP session for each input and PATCHes it with
// the input as a trickle-ICE fragment, in which "{ufrag}" and "{pwd}" stand
// for the session's ICE credentials (so that inputs can trickle as well as
// restart); ifMatch%4 picks If-Match: the current ETag, "*", none, or a
// stale one. The session must still be there to DELETE afterwards.
func FuzzWHIPPatch(f *testing.F) {
	srv := newEdgeServer(f, nil, true)
	offer := rawOffer(f, true)
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		f.Fatal(err)
	}
	ufrag, _ := d.MediaDescriptions[0].Attribute("ice-ufrag")
	pwd, _ := d.MediaDescriptions[0].Attribute("ice-pwd")
	f.Add(fragment(f, offer, "{ufrag}", "{pwd}", "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"), byte(0))
	f.Fuzz(func(t *testing.T, frag string, ifMatch byte) {
		r := send(t, nil, http.MethodPost, srv.base+"/whip/fuzz", map[string]string{"Content-Type": sdpType}, offer)
		if r.status != http.StatusCreated {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		loc, etag := srv.base+r.header.Get("Location"), r.header.Get("ETag")
		body := strings.NewReplacer("{ufrag}", ufrag, "{pwd}", pwd).Replace(frag)
		h := map[string]string{"Content-Type": fragType}
		switch ifMatch % 4 {
		case 0:
			h["If-Match"] = etag
		case 1:
			h["If-Match"] = "*"
		case 3:
			h["If-Match"] = `"stale"`
		}
		p := send(t, nil, http.MethodPatch, loc, h, body)
		switch p.status {
		case http.StatusOK:
			if ct := p.header.Get("Content-Type"); ct != fragType {
				t.Errorf("200 with Content-Type %q", ct)
			}
			if e := p.header.Get("ETag"); e == "" || e == etag {
				t.Errorf("200 with ETag %q, was %q: want a new one", e, etag)
			}
			if !containsAll(p.body, "a=ice-ufrag:", "a=ice-pwd:", "a=candidate:") {
				t.Errorf("restart answer without ICE credentials or candidates: %q", p.body)
			}
		case http.StatusNoContent, http.StatusBadRequest, http.StatusPreconditionFailed,
			http.StatusPreconditionRequired, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("PATCH status %d (%q) for fragment %.200q", p.status, p.body, body)
		}
		if d := send(t, nil, http.MethodDelete, loc, nil, ""); d.status != http.StatusOK {
			t.Errorf("DELETE after the PATCH: %d %s", d.status, d.body)
		}
		srv.waitSessions(t, 0, 5*time.Second)
		if h := send(t, nil, http.MethodGet, srv.base+"/healthz", nil, ""); h.status != http.StatusOK {
			t.Fatalf("healthz %d after fragment %.200q", h.status, body)
		}
	})
}
