package rtc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"

	"github.com/pion/srtp/v3"
)

// gcmSealer encrypts the RTP of one connection under an AEAD_AES_128_GCM
// or AEAD_AES_256_GCM SRTP profile (RFC 7714), in place, for the direct
// path: the same output as pion's srtp.Context.EncryptRTP, without its
// per-packet work that the direct path does not need (parsing the header
// it has just written, a map lookup per SSRC, cryptex and MKI checks).
// Its rollover counters follow pion's sender (srtpSSRCState); a
// connection keeps one sealer for all its RTP, so one counter covers
// every packet of an SSRC. Not safe for concurrent use.
type gcmSealer struct {
	aead cipher.AEAD
	salt [12]byte
	iv   [12]byte // scratch: a local array would escape through the interface call
	// The SSRCs sent: a viewer has a few (video, audio, RTX), kept in
	// the struct itself, not behind another pointer to miss the cache on.
	ssrcs [4]rocState
	more  []rocState
}

// rocState is the packet index of one SSRC: the rollover counter and the
// highest sequence number sent (RFC 3711 §3.3.1).
type rocState struct {
	ssrc    uint32
	index   uint64
	started bool
}

// errGCMProfile: the profile is not an AES-GCM one.
var errGCMProfile = errors.New("not an AES-GCM SRTP profile")

// newGCMSealer derives the session key and salt from a master key and
// salt (RFC 3711 §4.3, key derivation rate 0) and makes the sealer.
func newGCMSealer(profile srtp.ProtectionProfile, masterKey, masterSalt []byte) (*gcmSealer, error) {
	if profile != srtp.ProtectionProfileAeadAes128Gcm && profile != srtp.ProtectionProfileAeadAes256Gcm {
		return nil, errGCMProfile
	}
	key, err := srtpKDF(0x00, masterKey, masterSalt, len(masterKey))
	if err != nil {
		return nil, err
	}
	salt, err := srtpKDF(0x02, masterKey, masterSalt, 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	g := &gcmSealer{aead: aead}
	copy(g.salt[:], salt)
	return g, nil
}

// srtpKDF is the AES-CM key derivation of RFC 3711 §4.3.3 with a key
// derivation rate of 0: AES in counter mode over the master salt with the
// label in its eighth byte.
func srtpKDF(label byte, masterKey, masterSalt []byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	var in [aes.BlockSize]byte
	copy(in[:], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	for i := 0; i < n; i += aes.BlockSize {
		binary.BigEndian.PutUint16(in[aes.BlockSize-2:], uint16(i/aes.BlockSize))
		block.Encrypt(out[i:], in[:])
	}
	return out[:n], nil
}

// seal encrypts the RTP packet pkt, whose header (headerLen bytes, for
// ssrc and seq) stays clear as the authenticated data, in place, and
// returns it with the 16-byte tag appended; pkt must have the room.
func (g *gcmSealer) seal(pkt []byte, headerLen int, ssrc uint32, seq uint16) []byte {
	roc := g.rollover(ssrc, seq)
	iv := &g.iv
	iv[0], iv[1] = 0, 0
	binary.BigEndian.PutUint32(iv[2:], ssrc)
	binary.BigEndian.PutUint32(iv[6:], roc)
	binary.BigEndian.PutUint16(iv[10:], seq)
	for i := range iv {
		iv[i] ^= g.salt[i]
	}
	g.aead.Seal(pkt[headerLen:headerLen], iv[:], pkt[headerLen:], pkt[:headerLen])
	return pkt[:len(pkt)+g.aead.Overhead()]
}

// rollover returns the rollover counter of the packet and counts it, as
// pion's sender does (srtpSSRCState.nextRolloverCount and
// updateRolloverCount): the first packet sets the index; later ones are
// placed within half the sequence space of the highest sent, which an
// older packet (a retransmission) does not move.
func (g *gcmSealer) rollover(ssrc uint32, seq uint16) uint32 {
	s := g.state(ssrc)
	if !s.started {
		s.started = true
		s.index = uint64(seq)
		return 0
	}
	const median, span = 1 << 15, 1 << 16
	localROC := uint32(s.index >> 16)
	localSeq := int32(s.index & (span - 1))
	v := int32(seq)
	roc, diff := localROC, v-localSeq
	if s.index > median {
		switch {
		case localSeq < median && v-localSeq > median:
			roc, diff = localROC-1, v-localSeq-span
		case localSeq >= median && localSeq-median > v:
			roc, diff = localROC+1, v-localSeq+span
		}
	}
	if diff > 0 {
		s.index += uint64(diff)
	}
	return roc
}

// state returns the state of ssrc, new if it has none.
func (g *gcmSealer) state(ssrc uint32) *rocState {
	for i := range g.ssrcs {
		if s := &g.ssrcs[i]; s.started && s.ssrc == ssrc {
			return s
		}
	}
	for i := range g.more {
		if g.more[i].ssrc == ssrc {
			return &g.more[i]
		}
	}
	for i := range g.ssrcs {
		if s := &g.ssrcs[i]; !s.started {
			s.ssrc = ssrc
			return s
		}
	}
	g.more = append(g.more, rocState{ssrc: ssrc})
	return &g.more[len(g.more)-1]
}
