package rtc

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestGCMSealerMatchesPion: for both AES-GCM profiles, the direct path's
// sealer gives byte for byte what pion's srtp.Context gives for the same
// packets: two SSRCs interleaved, header extensions, a sequence number
// wrap, retransmissions of packets from before the wrap, and a stream
// that starts low in the sequence space and goes back (pion's rollover
// rules for its first half), and more SSRCs than it keeps inline. pion's
// context decrypts every packet.
func TestGCMSealerMatchesPion(t *testing.T) {
	profiles := []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm}
	type step struct {
		ssrc uint32
		seq  uint16
	}
	var steps []step
	for i := range 40 { // video across the wrap, audio alongside
		steps = append(steps, step{1, uint16(65515 + i)}, step{2, uint16(65530 + i/2)})
	}
	steps = append(steps, step{1, 65520}, step{1, 3}, step{1, 65534}, step{1, 25}) // NACKed packets again
	steps = append(steps, step{3, 10}, step{3, 11}, step{3, 5}, step{3, 40000}, step{3, 40001}, step{3, 12})
	for i := range 6 { // more SSRCs than the sealer keeps inline
		steps = append(steps, step{uint32(4 + i%3), uint16(65534 + i/3)}, step{1, uint16(30 + i)})
	}
	for _, profile := range profiles {
		t.Run(fmt.Sprint(profile), func(t *testing.T) {
			keyLen, err := profile.KeyLen()
			if err != nil {
				t.Fatal(err)
			}
			saltLen, err := profile.SaltLen()
			if err != nil {
				t.Fatal(err)
			}
			key, salt := make([]byte, keyLen), make([]byte, saltLen)
			_, _ = rand.Read(key)
			_, _ = rand.Read(salt)
			g, err := newGCMSealer(profile, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := srtp.CreateContext(key, salt, profile)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := srtp.CreateContext(key, salt, profile, srtp.SRTPNoReplayProtection())
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range steps {
				h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq, Timestamp: uint32(i) * 3000, SSRC: s.ssrc, Marker: i%3 == 0}
				if i%2 == 0 {
					if err := h.SetExtension(3, []byte{byte(i), 0}); err != nil {
						t.Fatal(err)
					}
				}
				plain, err := (&rtp.Packet{Header: h, Payload: bytes.Repeat([]byte{byte(i)}, 100+i)}).Marshal()
				if err != nil {
					t.Fatal(err)
				}
				want, err := enc.EncryptRTP(nil, plain, nil)
				if err != nil {
					t.Fatal(err)
				}
				buf := append(make([]byte, 0, len(plain)+srtpTagRoom), plain...)
				got := g.seal(buf, h.MarshalSize(), s.ssrc, s.seq)
				if !bytes.Equal(got, want) {
					t.Fatalf("step %d (ssrc %d seq %d): sealed bytes differ from pion's", i, s.ssrc, s.seq)
				}
				if &got[0] != &buf[0] {
					t.Fatalf("step %d: not sealed in place", i)
				}
				if _, err := dec.DecryptRTP(nil, got, nil); err != nil {
					t.Fatalf("step %d (ssrc %d seq %d): pion cannot decrypt: %v", i, s.ssrc, s.seq, err)
				}
			}
		})
	}
	if _, err := newGCMSealer(srtp.ProtectionProfileAes128CmHmacSha1_80, make([]byte, 16), make([]byte, 14)); err == nil {
		t.Error("an AES-CM profile was taken")
	}
}

// BenchmarkSealRTP: encrypting one 1200-byte RTP packet in place, the
// direct path's sealer against pion's srtp.Context, AES-128-GCM, over 256
// connections in turn (a worker's viewers). In the server the gap is
// larger than here: there the per-connection state (pion's SSRC map and
// states) is rarely in cache.
func BenchmarkSealRTP(b *testing.B) {
	const conns = 256
	key, salt := make([]byte, 16), make([]byte, 12)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}
	if err := h.SetExtension(3, []byte{0, 0}); err != nil {
		b.Fatal(err)
	}
	plain, _ := (&rtp.Packet{Header: h, Payload: make([]byte, 1200)}).Marshal()
	buf := make([]byte, len(plain), len(plain)+srtpTagRoom)
	b.Run("sluice", func(b *testing.B) {
		var gs [conns]*gcmSealer
		for i := range gs {
			g, err := newGCMSealer(srtp.ProtectionProfileAeadAes128Gcm, key, salt)
			if err != nil {
				b.Fatal(err)
			}
			gs[i] = g
		}
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			copy(buf, plain)
			gs[i%conns].seal(buf[:len(plain)], h.MarshalSize(), h.SSRC, uint16(i/conns))
		}
	})
	b.Run("pion", func(b *testing.B) {
		var cs [conns]*srtp.Context
		for i := range cs {
			ctx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
			if err != nil {
				b.Fatal(err)
			}
			cs[i] = ctx
		}
		var hdr rtp.Header
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			copy(buf, plain)
			seq := uint16(i / conns)
			buf[2], buf[3] = byte(seq>>8), byte(seq)
			if _, err := cs[i%conns].EncryptRTP(buf[:0], buf[:len(plain)], &hdr); err != nil {
				b.Fatal(err)
			}
		}
	})
}
