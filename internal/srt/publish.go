package srt

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	gosrt "github.com/datarhei/gosrt"

	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// ErrNoCodec means a publisher's MPEG-TS has no track sluice can carry.
var ErrNoCodec = errors.New("no supported track (H264, H265, AAC, Opus)")

// publisher is the stream's view of an SRT publisher: MPEG-TS has no way
// back to the encoder, so the keyframe interval is the encoder's.
type publisher struct{ remote string }

// RequestKeyframe does nothing: SRT cannot ask for one.
func (*publisher) RequestKeyframe() {}

// Protocol is "srt": how the stream comes in (GET /v1/streams' origin).
func (*publisher) Protocol() string { return "srt" }

// Remote is the SRT publisher's address.
func (p *publisher) Remote() string { return p.remote }

// tsTrack is one MPEG-TS track on its way into the hub. Video tracks
// wait for their parameter sets (in the first keyframe) before the stream
// is published; audio tracks know their codec from the tables.
type tsTrack struct {
	t      *mpegts.Track
	codec  media.Codec
	params [][]byte
	ready  bool
	ft     *ingest.FrameTrack
}

// tsPublisher maps a publisher's MPEG-TS onto the hub.
type tsPublisher struct {
	srv    *Server
	name   string
	pub    *publisher
	log    *slog.Logger
	tracks []*tsTrack
	st     *hub.Writer
	err    error // the publish failed: the connection ends

	published func()        // announces the stream
	list      func() func() // lists the publisher in the API's table
	unlist    func()        // set once published
}

// publish takes the caller's MPEG-TS into the hub until it leaves.
func (s *Server) publish(conn gosrt.Conn, name string, log *slog.Logger) error {
	rd := newIdleReader(conn, s.cfg.HandshakeTimeout)
	defer rd.stop()
	r := &mpegts.Reader{R: rd}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("MPEG-TS tables: %w", err)
	}
	rd.setTimeout(s.cfg.ReadTimeout)
	p := &tsPublisher{srv: s, name: name, pub: &publisher{remote: conn.RemoteAddr().String()}, log: log,
		published: func() { s.event(events.StreamPublished, name, conn, nil) },
		list:      func() func() { return s.listed("srt-publish", name, conn) }}
	for _, t := range r.Tracks() {
		if tt := p.addTrack(r, t); tt != nil {
			p.tracks = append(p.tracks, tt)
		}
	}
	if len(p.tracks) == 0 {
		return ErrNoCodec
	}
	var decodeErrs int
	r.OnDecodeError(func(error) { decodeErrs++ })
	defer func() {
		if decodeErrs > 0 {
			log.Warn("srt: MPEG-TS decode errors", "count", decodeErrs)
		}
		if p.st != nil {
			p.st.Detach()
			p.unlist()
			s.event(events.StreamUnpublished, name, conn, nil)
		}
	}()
	p.tryPublish()
	for {
		if err := r.Read(); err != nil {
			if s.ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if p.err != nil {
			return p.err
		}
	}
}

// addTrack maps one MPEG-TS track and routes its data; nil for a codec
// left out (logged by name).
func (p *tsPublisher) addTrack(r *mpegts.Reader, t *mpegts.Track) *tsTrack {
	tt := &tsTrack{t: t}
	switch c := t.Codec.(type) {
	case *tscodecs.H264:
		r.OnDataH264(t, func(pts, dts int64, au [][]byte) error {
			p.video(tt, pts, dts, au, h264Params)
			return nil
		})
	case *tscodecs.H265:
		r.OnDataH265(t, func(pts, dts int64, au [][]byte) error {
			p.video(tt, pts, dts, au, h265Params)
			return nil
		})
	case *tscodecs.MPEG4Audio:
		enc, err := c.Config.Marshal()
		if err == nil {
			tt.codec, err = ingest.AACCodec(enc)
		}
		if err != nil {
			p.log.Warn("srt track left out: AAC config", "err", err)
			return nil
		}
		tt.ready = true
		rate := int64(c.SampleRate)
		r.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error {
			for i, au := range aus {
				p.write(tt, pts+int64(i)*mpeg4audio.SamplesPerAccessUnit*90000/rate, au)
			}
			return nil
		})
	case *tscodecs.Opus:
		ch := 2
		if c.ChannelCount == 1 { //nolint:staticcheck // the descriptor's channel count
			ch = 1
		}
		tt.codec, tt.ready = ingest.OpusCodec(ch), true
		r.OnDataOpus(t, func(pts int64, pkts [][]byte) error {
			for _, pkt := range pkts {
				p.write(tt, pts, pkt)
				pts += opus.PacketDuration2(pkt) * 90000 / 48000
			}
			return nil
		})
	default:
		p.log.Warn("srt track left out: codec not supported", "codec", strings.TrimPrefix(fmt.Sprintf("%T", t.Codec), "*codecs."))
		return nil
	}
	return tt
}

// video takes a video access unit: before the stream is published, its
// parameter sets make the track's codec.
func (p *tsPublisher) video(tt *tsTrack, pts, dts int64, au [][]byte, params func([][]byte) (media.Codec, [][]byte, bool)) {
	if !tt.ready {
		c, ps, ok := params(au)
		if !ok {
			return // before the first keyframe
		}
		tt.codec, tt.params, tt.ready = c, ps, true
		p.tryPublish()
	}
	if tt.ft == nil {
		return
	}
	_ = tt.ft.Write(tsDur(pts), tsDur(dts), au)
}

// write takes an audio packet.
func (p *tsPublisher) write(tt *tsTrack, pts int64, pkt []byte) {
	if tt.ft != nil {
		_ = tt.ft.Write(tsDur(pts), tsDur(pts), [][]byte{pkt})
	}
}

// tryPublish publishes the stream once every track knows its codec.
func (p *tsPublisher) tryPublish() {
	if p.st != nil || p.err != nil {
		return
	}
	codecs := make([]media.Codec, len(p.tracks))
	for i, t := range p.tracks {
		if !t.ready {
			return
		}
		codecs[i] = t.codec
	}
	st, err := p.srv.cfg.Hub.Publish(p.name, p.pub, codecs)
	if errors.Is(err, hub.ErrBusy) && p.srv.cfg.Takeover != nil && p.srv.cfg.Takeover(p.name) {
		p.log.Info("publisher taken over")
		st, err = p.srv.cfg.Hub.Publish(p.name, p.pub, codecs)
	}
	if err != nil {
		p.err = err
		return
	}
	p.st = st
	p.unlist = p.list()
	names := make([]string, len(codecs))
	for i, t := range p.tracks {
		idx := st.AddTrack(t.codec)
		ft, err := ingest.NewFrameTrack(t.codec, idx, st, p.log)
		if err != nil {
			p.err = fmt.Errorf("track %s: %w", t.codec.Name(), err)
			return
		}
		ft.SetParameterSets(t.params...)
		t.ft = ft
		names[i] = t.codec.Name()
	}
	p.log.Info("srt publishing", "tracks", strings.Join(names, "+"))
	p.published()
}

func h264Params(au [][]byte) (media.Codec, [][]byte, bool) {
	var sps, pps []byte
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	if sps == nil || pps == nil {
		return media.Codec{}, nil, false
	}
	return ingest.H264Codec(sps, pps), [][]byte{sps, pps}, true
}

func h265Params(au [][]byte) (media.Codec, [][]byte, bool) {
	var vps, sps, pps []byte
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		switch h265.NALUType((n[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			vps = n
		case h265.NALUType_SPS_NUT:
			sps = n
		case h265.NALUType_PPS_NUT:
			pps = n
		}
	}
	if vps == nil || sps == nil || pps == nil {
		return media.Codec{}, nil, false
	}
	return ingest.H265Codec(vps, sps, pps), [][]byte{vps, sps, pps}, true
}

// tsDur converts a 90 kHz MPEG-TS time to a duration.
func tsDur(v int64) time.Duration {
	return time.Duration(v/90000)*time.Second + time.Duration(v%90000)*time.Second/90000
}

// maxTablesBytes bounds what a publisher may send before its MPEG-TS
// tables (PAT, PMT) are found: mediacommon's reader keeps it all to read
// again.
const maxTablesBytes = 4 << 20

// errNoTables is a publisher whose first handshake_timeout or 4 MiB held
// no MPEG-TS tables (garbage, or a stream that is not MPEG-TS).
var errNoTables = errors.New("none in the first 4 MiB or within srt.handshake_timeout (garbage, or not MPEG-TS)")

// idleReader closes the connection when a read brings nothing for the
// timeout (gosrt's deadlines are no-ops, and its idle timeout counts
// keep-alives as traffic). Until setTimeout is called it is in its first
// phase, the search for the tables: then the timeout runs from the start
// whatever arrives, and at most maxTablesBytes are read.
type idleReader struct {
	conn    gosrt.Conn
	mu      sync.Mutex
	d       time.Duration
	timer   *time.Timer
	first   bool  // looking for the tables
	read    int64 // bytes read in the first phase
	expired bool  // the first phase's timeout closed the connection
}

func newIdleReader(conn gosrt.Conn, d time.Duration) *idleReader {
	r := &idleReader{conn: conn, d: d, first: true}
	r.timer = time.AfterFunc(d, func() {
		r.mu.Lock()
		r.expired = r.first
		r.mu.Unlock()
		_ = conn.Close()
	})
	return r
}

func (r *idleReader) Read(b []byte) (int, error) {
	n, err := r.conn.Read(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first {
		r.read += int64(n)
		if r.expired || r.read > maxTablesBytes {
			return 0, errNoTables
		}
		return n, err
	}
	if n > 0 {
		r.timer.Reset(r.d)
	}
	return n, err
}

// setTimeout ends the first phase: from now on the connection is closed
// after d without data.
func (r *idleReader) setTimeout(d time.Duration) {
	r.mu.Lock()
	r.d = d
	r.first = false
	r.timer.Reset(d)
	r.mu.Unlock()
}

func (r *idleReader) stop() { r.timer.Stop() }
