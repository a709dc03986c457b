package rtc

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// TestConsentAnswer: the binding success built by hand is pion's, byte
// for byte, for IPv4, IPv4-mapped and IPv6 sources, and pion takes it.
func TestConsentAnswer(t *testing.T) {
	key := stun.NewShortTermIntegrity(rigPwd)
	var s consentScratch
	id := [stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff}
	for _, from := range []string{"192.0.2.1:3478", "[::ffff:192.0.2.1]:1", "[2001:db8::1]:65535", "[fe80::1%eth0]:9"} {
		addr := netip.MustParseAddrPort(from)
		want, err := stun.Build(stun.NewTransactionIDSetter(id), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: addr.Addr().Unmap().AsSlice(), Port: int(addr.Port())}, key, stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		got := s.answer(id, addr, newICECreds(rigUfrag, rigPwd).mac)
		if !bytes.Equal(got, want.Raw) {
			t.Errorf("%s: answer\n%x, pion's\n%x", from, got, want.Raw)
			continue
		}
		m := &stun.Message{Raw: append([]byte(nil), got...)}
		if err := m.Decode(); err != nil {
			t.Fatalf("%s: %v", from, err)
		}
		if err := key.Check(m); err != nil {
			t.Errorf("%s: integrity: %v", from, err)
		}
		if err := stun.Fingerprint.Check(m); err != nil {
			t.Errorf("%s: fingerprint: %v", from, err)
		}
		var mapped stun.XORMappedAddress
		if err := mapped.GetFrom(m); err != nil || !mapped.IP.Equal(addr.Addr().AsSlice()) || mapped.Port != int(addr.Port()) {
			t.Errorf("%s: XOR-MAPPED-ADDRESS %v (%v)", from, mapped, err)
		}
	}
	if s.answer(id, netip.AddrPort{}, newICECreds(rigUfrag, rigPwd).mac) != nil {
		t.Error("an answer to no address")
	}
}

// integrityCases are STUN messages checkIntegrity must judge as pion
// does; they also seed FuzzConsentIntegrity.
func integrityCases(t testing.TB) []struct {
	name string
	raw  []byte
	ok   bool
} {
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(rigUfrag + ":viewer")}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	key := stun.NewShortTermIntegrity(rigPwd)
	priority := stun.RawAttribute{Type: stun.AttrPriority, Value: []byte{0x6e, 0, 0x1e, 0xff}}
	controlling := stun.RawAttribute{Type: stun.AttrICEControlling, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	useCandidate := stun.RawAttribute{Type: stun.AttrUseCandidate}
	full := build(priority, controlling, useCandidate, key, stun.Fingerprint)
	flip := func(i int) []byte {
		b := append([]byte(nil), full...)
		b[i] ^= 1
		return b
	}
	// full without its FINGERPRINT, the length fixed.
	noFP := append([]byte(nil), full[:len(full)-8]...)
	noFP[3] -= 8
	// An attribute after MESSAGE-INTEGRITY: pion drops it, unchecked.
	after := append(append([]byte(nil), noFP...), 0x80, 0x22, 0, 4, 's', 'l', 'c', 'e')
	after[3] += 8
	// MESSAGE-INTEGRITY cut to 16 bytes.
	short := append([]byte(nil), noFP[:len(noFP)-4]...)
	short[len(short)-17] = 16
	short[3] -= 4
	return []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"integrity and fingerprint", build(key, stun.Fingerprint), true},
		{"integrity only", build(key), true},
		{"nominated, priority, controlling", full, true},
		{"fingerprint removed", noFP, true},
		{"attribute after integrity", after, true},
		{"wrong key", build(stun.NewShortTermIntegrity("wrongpassword"), stun.Fingerprint), false},
		{"no integrity", build(priority, stun.Fingerprint), false},
		{"tampered transaction ID", flip(10), false},
		{"tampered username", flip(24), false},
		{"tampered priority", flip(48), false}, // after the header and USERNAME
		{"tampered integrity", flip(len(full) - 12), false},
		{"tampered fingerprint", flip(len(full) - 1), true}, // not covered by the HMAC
		{"truncated integrity", short, false},
		{"truncated header", full[:19], false},
		{"truncated attribute", full[:len(full)-30], false},
		{"truncated after integrity", full[:len(full)-8], false}, // length says more
	}
}

// TestConsentIntegrity: checkIntegrity accepts exactly the requests
// pion's MessageIntegrity.Check accepts, and leaves them as they were.
func TestConsentIntegrity(t *testing.T) {
	for _, c := range integrityCases(t) {
		if got, pion := checkLikePion(t, c.raw); got != c.ok || pion != c.ok {
			t.Errorf("%s: checkIntegrity %v, pion %v, want %v", c.name, got, pion, c.ok)
		}
	}
}

func FuzzConsentIntegrity(f *testing.F) {
	for _, c := range integrityCases(f) {
		f.Add(c.raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if got, pion := checkLikePion(t, raw); got != pion {
			t.Errorf("checkIntegrity %v, pion %v", got, pion)
		}
	})
}

// checkLikePion decodes raw and reports whether checkIntegrity and pion
// accept it; neither does what does not decode.
func checkLikePion(t *testing.T, raw []byte) (got, pion bool) {
	t.Helper()
	var s consentScratch
	orig := append([]byte(nil), raw...)
	s.req.Raw = raw
	if s.req.Decode() != nil {
		return false, false
	}
	got = s.checkIntegrity(&s.req, newICECreds(rigUfrag, rigPwd).mac)
	if !bytes.Equal(raw, orig) {
		t.Error("checkIntegrity wrote into the message")
	}
	m := &stun.Message{Raw: orig}
	if m.Decode() != nil {
		t.Fatal("decodes once but not twice")
	}
	return got, stun.NewShortTermIntegrity(rigPwd).Check(m) == nil
}

// consentRig is a Direct detached as far as answering consent checks
// goes (no DTLS), its shared socket and the viewer's address.
func consentRig(tb testing.TB) (*Direct, *detached, *batchConn, netip.AddrPort) {
	tb.Helper()
	bc := loopbackBatchConn(tb)
	viewer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = viewer.Close() })
	from := addrOf(viewer)
	d := &Direct{engine: &Engine{net: &batchNet{conns: []*batchConn{bc}}}}
	r, err := bc.route(from)
	if err != nil {
		tb.Fatal(err)
	}
	d.route.Store(r)
	x := &detached{local: newICECreds(rigUfrag, rigPwd)}
	d.det.Store(x)
	return d, x, bc, from
}

// consentCheck is a viewer's consent check with the rig's credentials.
func consentCheck(tb testing.TB) []byte {
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(rigUfrag+":viewer"),
		stun.NewShortTermIntegrity(rigPwd), stun.Fingerprint)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Raw
}

// TestConsentAnswerAllocatesNothing: once warm, answering a detached
// viewer's consent check (decode, integrity, answer, write) allocates
// nothing.
func TestConsentAnswerAllocatesNothing(t *testing.T) {
	d, x, bc, from := consentRig(t)
	req := consentCheck(t)
	n := testing.AllocsPerRun(200, func() {
		if !d.receiveSTUN(x, req, from, bc) {
			t.Fatal("the check was not answered")
		}
	})
	if n != 0 && !raceEnabled {
		t.Errorf("%v allocations per check, want 0", n)
	}
}

func BenchmarkConsentAnswer(b *testing.B) {
	d, x, bc, from := consentRig(b)
	req := consentCheck(b)
	b.ReportAllocs()
	for b.Loop() {
		if !d.receiveSTUN(x, req, from, bc) {
			b.Fatal("the check was not answered")
		}
	}
}
