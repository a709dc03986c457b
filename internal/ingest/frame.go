// The frame writer: sources that deliver access units instead of RTP
// (RTMP, SRT, transcoders) are packetized here, once per stream, with
// gortsplib's packetizers, into the same hub ring as RTP sources.

package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// MaxPayloadSize is the largest RTP payload a FrameTrack writes: what
// WebRTC stacks use (libwebrtc and pion stay near 1200 bytes), so that a
// packet with its RTP header, header extensions, SRTP tag and the IP/UDP
// headers fits a 1280-byte IPv6 path MTU and every tunnel in between.
const MaxPayloadSize = 1200

// Bounds on one access unit, against broken or hostile sources.
const (
	maxAUElements = 1024 // NAL units or OBUs
)

var (
	// ErrUnsupportedCodec means a FrameTrack has no packetizer for the
	// codec.
	ErrUnsupportedCodec = errors.New("no packetizer for codec")
	// ErrBadAccessUnit means an access unit cannot be packetized: empty,
	// too large, or not what the codec carries.
	ErrBadAccessUnit = errors.New("bad access unit")
)

// PacketWriter is where packetized RTP goes: the hub stream's writer
// (*hub.Writer satisfies it). Write copies what it keeps: the FrameTrack
// reuses the packet and payload once it returns.
type PacketWriter interface{ Write(p *hub.Packet) }

// FrameTrack packetizes one track's access units into RTP, once per
// stream, and writes them to a PacketWriter as one hub track: payloads of
// at most MaxPayloadSize bytes, the marker bit on the last packet of each
// video access unit, timestamps from the source's PTS in the codec's clock
// rate (from a random origin), sequence numbers continuous per track.
//
// A FrameTrack is safe for use by several goroutines (an edge may set
// parameter sets from its control path while its read loop writes); the
// packets of one Write are never interleaved with another's. A source
// normally writes each track from one goroutine, in decode order.
type FrameTrack struct {
	codec media.Codec
	track int
	w     PacketWriter
	log   *slog.Logger
	p     packetizer
	pt    uint8
	limit int  // most bytes in one access unit
	one   bool // the access unit is exactly one element (a frame, a packet, samples)

	mu       sync.Mutex
	seq      uint16
	tsOrigin uint32
	params   *paramSets // H264 and H265; nil for other codecs
	warnedB  bool       // the B-frame warning was logged
	pkt      hub.Packet // the packet being written, used again for each
}

// NewFrameTrack returns the FrameTrack that writes access units of codec c
// to w as hub track track (the index hub.Stream.AddTrack returned). log
// gets the track's rare events (a source with B-frames); nil discards
// them. The error wraps ErrUnsupportedCodec for a codec it cannot
// packetize.
func NewFrameTrack(c media.Codec, track int, w PacketWriter, log *slog.Logger) (*FrameTrack, error) {
	if c.ClockRate == 0 {
		return nil, fmt.Errorf("%w %s: no clock rate", ErrUnsupportedCodec, c.Name())
	}
	p, err := newPacketizer(c)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FrameTrack{
		codec: c, track: track, w: w, log: log,
		p: p.packetizer, pt: p.payloadType, limit: p.limit, one: p.one,
		seq:      uint16(rand.Uint32()),
		tsOrigin: rand.Uint32(),
	}
	if p.nal != nil {
		f.params = newParamSets(p.nal, c.Fmtp)
	}
	return f, nil
}

// Codec is the codec the track was made for.
func (f *FrameTrack) Codec() media.Codec { return f.codec }

// Write packetizes one access unit and writes its packets. pts and dts are
// durations from any fixed origin of the source's clock; dts equals pts
// when the source has no B-frames. Access units are given in decode order:
// with B-frames the packets go out in that order with PTS timestamps,
// which is what RTP carries (RFC 3550 §5.1; decoders reorder by the
// bitstream's picture order).
//
// au is the NAL units (H264, H265; without start codes or length
// prefixes), the OBUs of a temporal unit (AV1), or exactly one element:
// a frame (VP8, VP9), a packet (Opus), one raw access unit without ADTS
// header (AAC), samples (G.711). Write copies what it keeps; au may be
// reused once it returns.
func (f *FrameTrack) Write(pts, dts time.Duration, au [][]byte) error {
	if err := f.check(au); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if pts != dts && !f.warnedB {
		f.warnedB = true
		f.log.Warn("frame source sends B-frames (PTS differs from DTS): packets go out in decode order with PTS timestamps; some players stutter",
			"track", f.track, "codec", f.codec.Name())
	}
	if f.params != nil {
		au = f.params.complete(au)
	}
	pkts, err := f.p.encode(au)
	if f.params != nil {
		f.params.release()
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadAccessUnit, f.codec.Name(), err)
	}
	if len(pkts) == 0 {
		// pion's VP9 payloader gives nothing for a frame whose
		// uncompressed header does not parse.
		return fmt.Errorf("%w: %s: the packetizer could not parse it", ErrBadAccessUnit, f.codec.Name())
	}
	ts := f.tsOrigin + rtpTime(pts, f.codec.ClockRate)
	for _, rp := range pkts {
		p := &f.pkt
		*p = hub.Packet{Payload: rp.Payload}
		p.Track = f.track
		p.Marker = rp.Marker
		p.PayloadType = f.pt
		p.SequenceNumber = f.seq
		// Encoders that put several frames or sample blocks in one
		// access unit give each packet its offset from the first.
		p.Timestamp = ts + rp.Timestamp
		f.seq++
		f.w.Write(p)
	}
	return nil
}

// check refuses what the packetizers cannot take (gortsplib's encoders
// panic on empty elements) or what a decoder downstream would refuse.
func (f *FrameTrack) check(au [][]byte) error {
	switch {
	case len(au) == 0:
		return fmt.Errorf("%w: %s: empty", ErrBadAccessUnit, f.codec.Name())
	case f.one && len(au) != 1:
		return fmt.Errorf("%w: %s: %d elements, want 1", ErrBadAccessUnit, f.codec.Name(), len(au))
	case len(au) > maxAUElements:
		return fmt.Errorf("%w: %s: %d elements, limit %d", ErrBadAccessUnit, f.codec.Name(), len(au), maxAUElements)
	}
	n := 0
	for _, e := range au {
		if len(e) == 0 {
			return fmt.Errorf("%w: %s: empty element", ErrBadAccessUnit, f.codec.Name())
		}
		n += len(e)
	}
	if n > f.limit {
		return fmt.Errorf("%w: %s: %d bytes, limit %d", ErrBadAccessUnit, f.codec.Name(), n, f.limit)
	}
	if f.params != nil {
		return f.params.codec.check(au)
	}
	if f.pt == ptAAC && len(au[0]) >= 2 && au[0][0] == 0xff && au[0][1]&0xf0 == 0xf0 {
		// An ADTS sync word: no raw access unit starts so (it would open
		// with an END element), and receivers would strip it as a header.
		return fmt.Errorf("%w: AAC access unit starts with an ADTS header: give the raw access unit", ErrBadAccessUnit)
	}
	return nil
}

// SetParameterSets gives the H264 (SPS, PPS) or H265 (VPS, SPS, PPS)
// parameter sets known out of band, such as RTMP's AVC/HEVC decoder
// configuration record. They, or the newest ones seen in band, are put
// before the first slice of each IDR/IRAP access unit that lacks them, so
// that a viewer joining at a keyframe (the hub's GOP cache) can decode.
// Other NAL units are ignored, and so is the call for other codecs.
func (f *FrameTrack) SetParameterSets(ps ...[]byte) {
	if f.params == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		if len(p) > 0 {
			f.params.keep(p)
		}
	}
}

// rtpTime converts a duration to ticks of a clock of rate hz, modulo 2^32
// (RFC 3550 §5.1: the timestamp wraps). Whole seconds and the rest are
// scaled apart, so that no product overflows for any duration.
func rtpTime(d time.Duration, hz uint32) uint32 {
	s, rest := d/time.Second, d%time.Second
	t := int64(s)*int64(hz) + int64(rest)*int64(hz)/int64(time.Second)
	return uint32(t)
}
