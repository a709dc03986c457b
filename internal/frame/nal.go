package frame

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// nalClass is what an access unit assembler needs to know of a NAL unit.
type nalClass uint8

const (
	nalOther nalClass = iota
	nalKey            // a slice of a random access picture (H264 IDR, H265 IRAP)
	nalVPS            // parameter sets, indexes into nal.params
	nalSPS
	nalPPS
	nalAUD
)

var (
	errMalformed   = errors.New("malformed payload")
	errUnsupported = errors.New("unsupported packetization")
	errTooLarge    = errors.New("frame too large")
)

// nalCodec is what differs between H264 (RFC 6184) and H265 (RFC 7798).
type nalCodec interface {
	// unpack passes the NAL units that payload completes to d.add and
	// keeps fragments in d.fu.
	unpack(d *nal, payload []byte) error
	classify(nalu []byte) nalClass
	// startsAU reports whether payload begins an access unit: a delimiter,
	// a parameter set or SEI, or the first slice of a picture. It decides
	// whether the first packet after a loss can be trusted as a start.
	startsAU(payload []byte) bool
	// params lists the parameter set classes a keyframe needs in band.
	params() []nalClass
	videoInfo(sps []byte) (media.VideoInfo, error)
}

// nal assembles access units of a NAL-based codec.
type nal struct {
	base
	c nalCodec

	inAU    bool
	ts      uint32
	nalus   [][]byte
	size    int
	key     bool
	have    [nalPPS + 1]bool
	broken  bool // the access unit lost packets or could not be parsed
	waitKey bool // after a loss, drop access units until a keyframe
	fu      []byte
	pending *media.Frame

	params  [nalPPS + 1][]byte // newest VPS, SPS, PPS
	info    media.VideoInfo
	hasInfo bool
}

// Push implements Depacketizer.
func (d *nal) Push(p *hub.Packet) (*media.Frame, bool) {
	var out *media.Frame
	if d.pending != nil {
		// A packet both ended an access unit without a marker and
		// completed the next one: the second is handed out now.
		out, d.pending = d.pending, nil
	}
	contiguous := d.follows(p)
	if d.inAU && p.Timestamp != d.ts {
		out = d.keep(out, d.finish())
	}
	if !contiguous {
		d.fu = nil
		d.waitKey = true
		if d.inAU {
			d.broken = true
		}
	}
	if !d.inAU {
		d.begin(p.Timestamp)
		if !contiguous && !d.c.startsAU(p.Payload) {
			d.broken = true
		}
	}
	if !d.broken {
		if err := d.c.unpack(d, p.Payload); err != nil {
			d.broken, d.fu = true, nil
		}
	}
	if p.Marker {
		out = d.keep(out, d.finish())
	}
	return out, out != nil
}

// keep returns the first frame and parks the second one, if any.
func (d *nal) keep(first, second *media.Frame) *media.Frame {
	if first == nil {
		return second
	}
	if second != nil {
		d.pending = second
	}
	return first
}

func (d *nal) begin(ts uint32) {
	d.inAU, d.ts, d.broken, d.key, d.size = true, ts, false, false, 0
	d.have = [nalPPS + 1]bool{}
	d.nalus = d.nalus[:0]
}

// finish ends the access unit and returns it as a frame if it is whole and
// decodable.
func (d *nal) finish() *media.Frame {
	d.inAU = false
	if d.fu != nil { // ended inside a fragmented NAL unit
		d.broken, d.fu = true, nil
	}
	if d.broken || len(d.nalus) == 0 || (d.waitKey && !d.key) {
		d.nalus = d.nalus[:0]
		return nil
	}
	d.waitKey = false
	nalus := d.nalus
	if d.key {
		nalus = d.withParams(nalus)
	}
	d.nalus = nil // handed out: the next access unit gets a new slice
	f := d.newFrame(d.ts, d.key)
	f.NALUs = nalus
	return f
}

// withParams puts the cached parameter sets that a keyframe lacks in front
// of it (after an access unit delimiter), for consumers that need them in
// band.
func (d *nal) withParams(nalus [][]byte) [][]byte {
	var missing [][]byte
	for _, c := range d.c.params() {
		if !d.have[c] && d.params[c] != nil {
			missing = append(missing, d.params[c])
		}
	}
	if len(missing) == 0 {
		return nalus
	}
	at := 0
	if d.c.classify(nalus[0]) == nalAUD {
		at = 1
	}
	out := make([][]byte, 0, len(nalus)+len(missing))
	out = append(out, nalus[:at]...)
	out = append(out, missing...)
	return append(out, nalus[at:]...)
}

// add appends one complete NAL unit to the access unit.
func (d *nal) add(nalu []byte) error {
	if len(nalu) == 0 {
		return errMalformed
	}
	if len(d.nalus) >= maxFrameNALUs || d.size+len(nalu) > maxFrameBytes {
		return errTooLarge
	}
	switch c := d.c.classify(nalu); c {
	case nalKey:
		d.key = true
	case nalVPS, nalSPS, nalPPS:
		d.have[c] = true
		d.cache(c, nalu)
	}
	if d.nalus == nil {
		d.nalus = make([][]byte, 0, 8)
	}
	d.nalus = append(d.nalus, nalu)
	d.size += len(nalu)
	return nil
}

// cache keeps a copy of a parameter set that changed; a new SPS updates
// the video info.
func (d *nal) cache(c nalClass, nalu []byte) {
	if bytes.Equal(d.params[c], nalu) {
		return
	}
	d.params[c] = bytes.Clone(nalu)
	if c == nalSPS {
		if info, err := d.c.videoInfo(nalu); err == nil {
			d.info, d.hasInfo = info, true
		}
	}
}

// fragment handles one fragmentation unit: hdr is the rebuilt NAL unit
// header, data the fragment.
func (d *nal) fragment(start, end bool, hdr, data []byte) error {
	if start {
		if d.fu != nil {
			return errMalformed // the previous NAL unit never ended
		}
		d.fu = make([]byte, 0, len(hdr)+4*len(data))
		d.fu = append(d.fu, hdr...)
	} else if d.fu == nil {
		return errMalformed // a continuation without a start
	}
	if d.size+len(d.fu)+len(data) > maxFrameBytes {
		return errTooLarge
	}
	d.fu = append(d.fu, data...)
	if !end {
		return nil
	}
	nalu := d.fu
	d.fu = nil
	return d.add(nalu)
}

// VideoInfo implements VideoInfoer.
func (d *nal) VideoInfo() (media.VideoInfo, bool) { return d.info, d.hasInfo }

// seedParams caches parameter sets given out of band, base64 in the fmtp
// line (RFC 6184 §8.1 sprop-parameter-sets, RFC 7798 §7.1 sprop-vps etc.).
func (d *nal) seedParams(b64 string) {
	for _, s := range strings.Split(b64, ",") {
		nalu, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil || len(nalu) == 0 {
			continue
		}
		if c := d.c.classify(nalu); c == nalVPS || c == nalSPS || c == nalPPS {
			d.cache(c, nalu)
		}
	}
}

// fmtpParam returns the value of one fmtp parameter.
func fmtpParam(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// aggregated adds each NAL unit of an aggregation packet body (a 16-bit
// size before each unit: H264 STAP-A, H265 AP).
func (d *nal) aggregated(body []byte, minSize int) error {
	n := 0
	for len(body) > 0 {
		if len(body) < 2 {
			return errMalformed
		}
		size := int(body[0])<<8 | int(body[1])
		body = body[2:]
		if size < minSize || size > len(body) {
			return errMalformed
		}
		if err := d.add(body[:size]); err != nil {
			return err
		}
		body = body[size:]
		n++
	}
	if n == 0 {
		return errMalformed
	}
	return nil
}

// levelString formats a level given in tenths: 31 → "3.1", 40 → "4".
func levelString(tenths int) string {
	if tenths%10 == 0 {
		return strconv.Itoa(tenths / 10)
	}
	return strconv.Itoa(tenths/10) + "." + strconv.Itoa(tenths%10)
}
