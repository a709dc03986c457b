package rtc

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 8489 §14.5: MESSAGE-INTEGRITY is HMAC-SHA1
	"encoding/binary"
	"hash"
	"net/netip"

	"github.com/pion/stun/v4"
)

// A detached connection answers its viewer's consent checks every few
// seconds (RFC 7675), so this is done in reused buffers: pion's stun
// package would allocate about a dozen times per check.

const (
	stunHeaderSize = 20
	stunCookie     = 0x2112a442
)

// consentScratch is what answering a consent check reuses. The
// connection's mutex guards it.
type consentScratch struct {
	req  stun.Message // decoded in place: Raw is the packet
	hdr  [stunHeaderSize]byte
	mac  [sha1.Size]byte
	resp [128]byte
}

// ufragOf is the local ufrag of a USERNAME ("local:remote", RFC 8445
// §7.2.2).
func ufragOf(user []byte) []byte {
	if i := bytes.IndexByte(user, ':'); i >= 0 {
		return user[:i]
	}
	return user
}

// checkIntegrity reports whether m's MESSAGE-INTEGRITY is right for mac
// (keyed with the password), deciding as pion's MessageIntegrity.Check
// does but without writing into m.Raw: the HMAC covers the message up to
// the attribute, with the header's length ending at the attribute (RFC
// 8489 §14.5), so a FINGERPRINT after it is left out.
func (s *consentScratch) checkIntegrity(m *stun.Message, mac hash.Hash) bool {
	end := 0 // of MESSAGE-INTEGRITY, counted after the header
	var got []byte
	for _, a := range m.Attributes {
		end += 4 + (int(a.Length)+3)&^3
		if a.Type == stun.AttrMessageIntegrity {
			got = a.Value
			break
		}
	}
	if len(got) != sha1.Size {
		return false
	}
	copy(s.hdr[:], m.Raw)
	binary.BigEndian.PutUint16(s.hdr[2:], uint16(end))
	mac.Reset()
	mac.Write(s.hdr[:])
	mac.Write(m.Raw[stunHeaderSize : stunHeaderSize+end-4-sha1.Size])
	return hmac.Equal(got, mac.Sum(s.mac[:0]))
}

// answer is the binding success response (RFC 8489 §7.3.1) to request
// id from from: XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT,
// byte for byte what pion's stun.Build makes of them. It is in s.resp;
// nil if from has no address.
func (s *consentScratch) answer(id [stun.TransactionIDSize]byte, from netip.AddrPort, mac hash.Hash) []byte {
	ip := from.Addr().Unmap()
	if !ip.IsValid() {
		return nil
	}
	b := s.resp[:stunHeaderSize]
	binary.BigEndian.PutUint16(b[0:], stun.BindingSuccess.Value())
	binary.BigEndian.PutUint32(b[4:], stunCookie)
	copy(b[8:], id[:])

	// RFC 8489 §14.2: the port XORed with the cookie's top half, the
	// address with the cookie and the transaction ID.
	family, addr := uint16(1), ip.As16()
	a := addr[:]
	if ip.Is4() {
		a = a[12:]
	} else {
		family = 2
	}
	b = binary.BigEndian.AppendUint16(b, uint16(stun.AttrXORMappedAddress))
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(a)))
	b = binary.BigEndian.AppendUint16(b, family)
	b = binary.BigEndian.AppendUint16(b, from.Port()^stunCookie>>16)
	for i, v := range a {
		b = append(b, v^b[4+i]) // b[4:20] is the cookie and the ID
	}

	// The HMAC covers what is before MESSAGE-INTEGRITY, the length
	// already counting it.
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-stunHeaderSize+4+sha1.Size))
	mac.Reset()
	mac.Write(b)
	b = binary.BigEndian.AppendUint16(b, uint16(stun.AttrMessageIntegrity))
	b = binary.BigEndian.AppendUint16(b, sha1.Size)
	b = mac.Sum(b)

	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-stunHeaderSize+8))
	crc := stun.FingerprintValue(b)
	b = binary.BigEndian.AppendUint16(b, uint16(stun.AttrFingerprint))
	b = binary.BigEndian.AppendUint16(b, 4)
	return binary.BigEndian.AppendUint32(b, crc)
}
