package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// ReadAccessUnits splits an H264 Annex-B stream into access units. The
// stream must carry an access unit delimiter (NAL type 9, x264's aud=1)
// before every access unit; the delimiters are dropped, as WriteH264 would
// drop them too.
func ReadAccessUnits(r io.Reader) ([][][]byte, error) {
	hr, err := h264reader.NewReaderWithOptions(r, h264reader.WithIncludeSEI(true))
	if err != nil {
		return nil, err
	}
	var aus [][][]byte
	var cur [][]byte
	sawAUD := false
	for {
		nal, err := hr.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if nal.UnitType == h264reader.NalUnitTypeAUD {
			if len(cur) > 0 {
				aus = append(aus, cur)
			}
			cur = nil
			sawAUD = true
			continue
		}
		if !sawAUD {
			return nil, errors.New("Annex-B stream does not start with an access unit delimiter")
		}
		cur = append(cur, nal.Data)
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	if len(aus) == 0 {
		return nil, errors.New("no access units")
	}
	return aus, nil
}

// ReadAccessUnitsFile is ReadAccessUnits of the file at path.
func ReadAccessUnitsFile(path string) ([][][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAccessUnits(f)
}

// IsIDR reports whether the access unit holds an IDR slice (NAL type 5).
func IsIDR(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && mch264.NALUType(n[0]&0x1f) == mch264.NALUTypeIDR {
			return true
		}
	}
	return false
}

// PaddingSEI returns an SEI NAL unit (user data unregistered, ITU-T H.264
// D.1.7) of size or size-1 bytes, size ≥ 24. Decoders ignore it; it lets a
// test raise a stream's bit rate without re-encoding. Filler data (NAL type
// 12) would be simpler but pion's payloader drops it. The SEI belongs
// before the first slice of an access unit.
func PaddingSEI(size int) ([]byte, error) {
	if size < 24 {
		return nil, fmt.Errorf("padding SEI of %d bytes: minimum is 24", size)
	}
	// NAL header, payloadType, payloadSize (p/255+1 bytes), payload p
	// (UUID and data), rbsp trailing bits.
	wire := func(p int) int { return 1 + 1 + p/255 + 1 + p + 1 }
	p := size - 4
	for wire(p) > size {
		p--
	}
	nal := make([]byte, 0, size)
	nal = append(nal, 0x06, 0x05) // SEI, payloadType 5 (user_data_unregistered)
	for n := p; ; n -= 255 {
		if n < 255 {
			nal = append(nal, byte(n))
			break
		}
		nal = append(nal, 0xff)
	}
	nal = append(nal, paddingUUID[:]...)
	// 0xA5 never forms a start code or needs emulation prevention.
	for range p - len(paddingUUID) {
		nal = append(nal, 0xa5)
	}
	return append(nal, 0x80), nil // rbsp_trailing_bits
}

var paddingUUID = [16]byte{'s', 'l', 'u', 'i', 'c', 'e', '-', 'p', 'a', 'd', 'd', 'i', 'n', 'g', '-', '0'}

// h264Assembler turns H264 RTP packets (RFC 6184: single NAL, STAP-A, FU-A)
// back into access units, or H265 ones (RFC 7798: single NAL, AP, FU) when
// h265 is set. An access unit ends with the marker bit. After a sequence
// gap it drops everything up to the next marker, so that it never delivers
// a damaged access unit.
type h264Assembler struct {
	h265      bool
	depack    codecs.H264Packet
	depack265 codecs.H265Depacketizer
	nalus     [][]byte
	ts        uint32
	lastSeq   uint16
	started   bool
	broken    bool // waiting for the next marker after a loss
	gaps      uint64
}

// push adds one packet; it returns an access unit when p completes one.
func (a *h264Assembler) push(p *rtp.Packet) ([][]byte, bool) {
	if !a.started {
		a.started = true
		a.depack.IsAVC = true
		// A first packet in the middle of a fragmented NAL cannot be used.
		if len(p.Payload) >= 2 && p.Payload[0]&0x1f == byte(mch264.NALUTypeFUA) && p.Payload[1]&0x80 == 0 && !a.h265 {
			a.broken = true
		}
		if len(p.Payload) >= 3 && p.Payload[0]>>1&0x3f == 49 && p.Payload[2]&0x80 == 0 && a.h265 {
			a.broken = true
		}
	} else if p.SequenceNumber != a.lastSeq+1 {
		a.gaps++
		a.broken = true
	}
	a.lastSeq = p.SequenceNumber

	if a.broken {
		a.nalus = nil
		if p.Marker {
			a.broken = false
			a.depack = codecs.H264Packet{IsAVC: true}
			a.depack265 = codecs.H265Depacketizer{}
		}
		return nil, false
	}

	var done [][]byte
	ok := false
	// A new timestamp without a marker on the previous packet: the sender
	// did not mark the end of the access unit; close it here.
	if len(a.nalus) > 0 && p.Timestamp != a.ts {
		done, ok = a.nalus, true
		a.nalus = nil
	}
	a.ts = p.Timestamp

	nalus, err := a.unmarshal(p.Payload)
	if err != nil {
		a.nalus = nil
		a.broken = !p.Marker
		a.depack = codecs.H264Packet{IsAVC: true}
		a.depack265 = codecs.H265Depacketizer{}
		return done, ok
	}
	a.nalus = append(a.nalus, nalus...)
	if p.Marker && len(a.nalus) > 0 {
		if ok {
			// Two access units ended on one packet; the first one is
			// returned now and this one is lost. Only a sender that
			// forgets markers gets here.
			a.gaps++
			a.nalus = nil
			return done, ok
		}
		done, ok = a.nalus, true
		a.nalus = nil
	}
	return done, ok
}

// unmarshal returns the NAL units a payload completes.
func (a *h264Assembler) unmarshal(payload []byte) ([][]byte, error) {
	if a.h265 {
		// pion's H265 depacketizer keeps fragments by reference, and the
		// caller reuses its read buffer.
		out, err := a.depack265.Unmarshal(bytes.Clone(payload))
		if err != nil || len(out) == 0 {
			return nil, err
		}
		var annexb mch264.AnnexB
		if err := annexb.Unmarshal(out); err != nil {
			return nil, err
		}
		return annexb, nil
	}
	out, err := a.depack.Unmarshal(payload)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	var avcc mch264.AVCC
	if err := avcc.Unmarshal(out); err != nil {
		return nil, err
	}
	return avcc, nil
}

// nalTypes resolves the NAL type carried first in an RTP payload: the
// payload's own type, and for STAP-A and FU-A the type of the NAL inside.
func nalTypes(payload []byte) (pkt, first uint8) {
	if len(payload) == 0 {
		return 0, 0
	}
	pkt = payload[0] & 0x1f
	first = pkt
	switch mch264.NALUType(pkt) {
	case mch264.NALUTypeSTAPA:
		if len(payload) >= 4 {
			first = payload[3] & 0x1f
		}
	case mch264.NALUTypeFUA:
		if len(payload) >= 2 {
			first = payload[1] & 0x1f
		}
	}
	return pkt, first
}
