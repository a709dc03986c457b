package rtmp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// ErrNoCodec means a publisher sent no track sluice can carry.
var ErrNoCodec = errors.New("no supported track (H264, H265, AV1, VP9, AAC, Opus)")

// publisher is the stream's view of an RTMP publisher: RTMP has no way to
// ask the encoder for a keyframe, so the keyframe interval is the
// encoder's setting (OBS: 1 or 2 s).
type publisher struct{ remote string }

// RequestKeyframe does nothing: RTMP cannot ask for one.
func (*publisher) RequestKeyframe() {}

// Protocol is "rtmp": how the stream comes in (GET /v1/streams' origin).
func (*publisher) Protocol() string { return "rtmp" }

// Remote is the RTMP publisher's address.
func (p *publisher) Remote() string { return p.remote }

// inTrack is one track of a publisher mapped onto the frame writer.
type inTrack struct {
	t     *gortmplib.Track
	codec media.Codec
	ps    [][]byte // parameter sets from the config record
}

// publish takes the publisher's tracks into the hub until it leaves.
func (s *Server) publish(nc net.Conn, sc *gortmplib.ServerConn, name string, log *slog.Logger) error {
	// The tracks are known from the first frames: a publisher has
	// read_timeout to send them.
	_ = nc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
	r := &gortmplib.Reader{Conn: sc}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("reading tracks: %w", err)
	}
	tracks := mapTracks(r.Tracks(), log)
	if len(tracks) == 0 {
		return ErrNoCodec
	}
	for _, t := range r.Tracks() {
		if !slices.ContainsFunc(tracks, func(in inTrack) bool { return in.t == t }) {
			if err := ignore(r, t); err != nil {
				return err
			}
		}
	}
	codecList := make([]media.Codec, len(tracks))
	for i, t := range tracks {
		codecList[i] = t.codec
	}
	pub := &publisher{remote: nc.RemoteAddr().String()}
	st, err := s.cfg.Hub.Publish(name, pub, codecList)
	if errors.Is(err, hub.ErrBusy) && s.cfg.Takeover != nil && s.cfg.Takeover(name) {
		log.Info("publisher taken over")
		st, err = s.cfg.Hub.Publish(name, pub, codecList)
	}
	if err != nil {
		return err
	}
	unlist := s.listed("rtmp-publish", name, nc)
	defer func() {
		st.Detach()
		unlist()
	}()
	for _, t := range tracks {
		idx := st.AddTrack(t.codec)
		ft, err := ingest.NewFrameTrack(t.codec, idx, st, log)
		if err != nil {
			return fmt.Errorf("track %s: %w", t.codec.Name(), err)
		}
		ft.SetParameterSets(t.ps...)
		onData(r, t.t, ft)
	}
	log.Info("rtmp publishing", "tracks", describe(codecList))
	s.event(events.StreamPublished, name, nc, nil)
	_ = nc.SetWriteDeadline(time.Time{})
	for {
		_ = nc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		if err := r.Read(); err != nil {
			if s.ctx.Err() != nil || errors.Is(err, io.EOF) {
				s.event(events.StreamUnpublished, name, nc, nil)
				return nil
			}
			s.event(events.StreamUnpublished, name, nc, err)
			return err
		}
	}
}

// mapTracks maps gortmplib's tracks to hub codecs, logging the ones left
// out by name.
func mapTracks(in []*gortmplib.Track, log *slog.Logger) []inTrack {
	var out []inTrack
	for _, t := range in {
		switch c := t.Codec.(type) {
		case *codecs.H264:
			out = append(out, inTrack{t: t, codec: ingest.H264Codec(c.SPS, c.PPS), ps: [][]byte{c.SPS, c.PPS}})
		case *codecs.H265:
			out = append(out, inTrack{t: t, codec: ingest.H265Codec(c.VPS, c.SPS, c.PPS), ps: [][]byte{c.VPS, c.SPS, c.PPS}})
		case *codecs.AV1:
			out = append(out, inTrack{t: t, codec: ingest.AV1Codec()})
		case *codecs.VP9:
			out = append(out, inTrack{t: t, codec: ingest.VP9Codec()})
		case *codecs.MPEG4Audio:
			if c.Config == nil {
				log.Warn("rtmp track left out: AAC without a config")
				continue
			}
			enc, err := c.Config.Marshal()
			if err != nil {
				log.Warn("rtmp track left out: AAC config", "err", err)
				continue
			}
			mc, err := ingest.AACCodec(enc)
			if err != nil {
				log.Warn("rtmp track left out", "err", err)
				continue
			}
			out = append(out, inTrack{t: t, codec: mc})
		case *codecs.Opus:
			ch := 2
			if c.IDHeader != nil {
				ch = int(c.IDHeader.ChannelCount)
			}
			out = append(out, inTrack{t: t, codec: ingest.OpusCodec(ch)})
		default:
			log.Warn("rtmp track left out: codec not supported", "codec", codecName(t.Codec))
		}
	}
	return out
}

// onData routes a track's frames into its frame writer (nil: dropped). A
// frame the writer refuses (a broken unit) is dropped: the next keyframe
// recovers.
func onData(r *gortmplib.Reader, t *gortmplib.Track, ft *ingest.FrameTrack) {
	write := func(pts, dts time.Duration, au [][]byte) {
		if ft != nil {
			_ = ft.Write(pts, dts, au)
		}
	}
	switch t.Codec.(type) {
	case *codecs.H264:
		r.OnDataH264(t, func(pts, dts time.Duration, au [][]byte) { write(pts, dts, au) })
	case *codecs.H265:
		r.OnDataH265(t, func(pts, dts time.Duration, au [][]byte) { write(pts, dts, au) })
	case *codecs.AV1:
		r.OnDataAV1(t, func(pts time.Duration, tu [][]byte) { write(pts, pts, tu) })
	case *codecs.VP9:
		r.OnDataVP9(t, func(pts time.Duration, f []byte) { write(pts, pts, [][]byte{f}) })
	case *codecs.MPEG4Audio:
		r.OnDataMPEG4Audio(t, func(pts time.Duration, au []byte) { write(pts, pts, [][]byte{au}) })
	case *codecs.Opus:
		r.OnDataOpus(t, func(pts time.Duration, p []byte) { write(pts, pts, [][]byte{p}) })
	}
}

// ignore drops the data of a track left out: gortmplib's Reader wants a
// callback for every track it found.
func ignore(r *gortmplib.Reader, t *gortmplib.Track) error {
	switch t.Codec.(type) {
	case *codecs.MPEG1Audio:
		r.OnDataMPEG1Audio(t, func(time.Duration, []byte) {})
	case *codecs.FLAC:
		r.OnDataFLAC(t, func(time.Duration, []byte) {})
	case *codecs.AC3:
		r.OnDataAC3(t, func(time.Duration, []byte) {})
	case *codecs.G711:
		r.OnDataG711(t, func(time.Duration, []byte) {})
	case *codecs.LPCM:
		r.OnDataLPCM(t, func(time.Duration, []byte) {})
	case *codecs.H264, *codecs.H265, *codecs.AV1, *codecs.VP9, *codecs.MPEG4Audio, *codecs.Opus:
		onData(r, t, nil)
	default:
		return fmt.Errorf("codec %s not supported", codecName(t.Codec))
	}
	return nil
}

// codecName names a gortmplib codec for a log line.
func codecName(c codecs.Codec) string {
	n := fmt.Sprintf("%T", c)
	return strings.TrimPrefix(n, "*codecs.")
}

func describe(cs []media.Codec) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name()
	}
	return strings.Join(names, "+")
}
