package httpapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestLinkHeaders(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	got := linkHeaders([]ICEServer{
		{URLs: []string{"stun:stun.example.net"}},
		{URLs: []string{"turn:turn.example.net?transport=udp"}, Username: "u", Credential: "p"},
		{URLs: []string{"turns:t.example.net"}, Username: "sluice", TURNSecret: "s3cret", TURNTTL: time.Hour},
	}, now)
	if len(got) != 3 {
		t.Fatalf("got %d headers: %q", len(got), got)
	}
	if got[0] != `<stun:stun.example.net>; rel="ice-server"` {
		t.Errorf("stun: %s", got[0])
	}
	if got[1] != `<turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"` {
		t.Errorf("static turn: %s", got[1])
	}
	m := regexp.MustCompile(`username="([^"]+)"; credential="([^"]+)"`).FindStringSubmatch(got[2])
	if m == nil {
		t.Fatalf("rest turn: %s", got[2])
	}
	wantUser := strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + ":sluice"
	mac := hmac.New(sha1.New, []byte("s3cret"))
	mac.Write([]byte(wantUser))
	if m[1] != wantUser || m[2] != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Errorf("rest turn credentials %q/%q, want %q and its HMAC", m[1], m[2], wantUser)
	}
}

type fakeSession struct {
	id   string
	done chan struct{}
}

func (f *fakeSession) ID() string                             { return f.id }
func (f *fakeSession) Answer() string                         { return "" }
func (f *fakeSession) Close(error)                            {}
func (f *fakeSession) Done() <-chan struct{}                  { return f.done }
func (f *fakeSession) PeerConnection() *webrtc.PeerConnection { return nil }

func TestRegistryLimits(t *testing.T) {
	r := newRegistry(3, 2)
	a, b := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	rel1, err := r.reserve(a)
	if err != nil {
		t.Fatal(err)
	}
	e1 := &entry{kind: "whip", stream: "s", ip: a, session: &fakeSession{id: "1", done: make(chan struct{})}}
	r.add(e1)
	rel1()
	if _, err := r.reserve(a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reserve(a); !errors.Is(err, errTooManyFromIP) {
		t.Fatalf("third session from one address: %v, want errTooManyFromIP", err)
	}
	if _, err := r.reserve(b); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reserve(b); !errors.Is(err, errTooManySessions) {
		t.Fatalf("fourth session: %v, want errTooManySessions", err)
	}
	if r.publisher("s") != e1 || r.lookup("whip", "s", "1") != e1 || r.lookup("whep", "s", "1") != nil || r.lookup("whip", "t", "1") != nil {
		t.Fatal("lookup by kind/stream/id wrong")
	}
	r.remove(e1)
	if r.perIP[a] != 1 {
		t.Fatalf("perIP[a] = %d after remove, want 1 (the pending one)", r.perIP[a])
	}
}
