package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// play serves a stream to a player until the stream or the player ends.
func (s *Server) play(nc net.Conn, sc *gortmplib.ServerConn, name string, log *slog.Logger) error {
	st, err := s.cfg.Hub.Lookup(name)
	if err != nil {
		_ = sc.RejectAction()
		return err
	}
	// What a player sends while it plays (acknowledgements) is not read:
	// gortmplib answers some messages from its reader, which must not
	// write beside Send. A player that hangs up fails the next write.
	_ = nc.SetReadDeadline(time.Time{})
	ctx := s.ctx
	openCtx, openCancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	sub, err := s.cfg.Taps.Open(openCtx, st, tap.Options{Audio: tap.AudioAAC})
	openCancel()
	if err != nil {
		_ = sc.RejectAction()
		return err
	}
	defer sub.Close()
	log.Info("rtmp playing")
	defer s.listed("rtmp-read", name, nc)()
	s.event(events.ViewerJoined, name, nc, nil)
	defer s.event(events.ViewerLeft, name, nc, nil)
	err = Send(ctx, sub, sc, nc, s.cfg.WriteTimeout)
	if errors.Is(err, hub.ErrEnded) || s.ctx.Err() != nil {
		return nil
	}
	return err
}

// Units is what Send reads: a tap subscription.
type Units interface {
	Video() *tap.Track
	Audio() *tap.Track
	Next(ctx context.Context) (*tap.Unit, error)
}

// Send writes a stream's units to an RTMP connection (a player on the
// server, or a Client publishing to another server) until the stream
// ends, ctx is done or a write fails; each write is bounded by
// writeTimeout. The first unit is a video keyframe, whose parameter sets
// make the track's config record.
func Send(ctx context.Context, units Units, conn gortmplib.Conn, nc net.Conn, writeTimeout time.Duration) error {
	var first *tap.Unit
	if units.Video() != nil {
		u, err := units.Next(ctx)
		if err != nil {
			return err
		}
		first = u
	}
	out, err := newSender(units, first)
	if err != nil {
		return err
	}
	w := &gortmplib.Writer{Conn: conn, Tracks: out.tracks}
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := w.Initialize(); err != nil {
		return err
	}
	out.w = w
	for u := first; ; {
		if u != nil {
			_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := out.write(u); err != nil {
				return err
			}
		}
		if u, err = units.Next(ctx); err != nil {
			return err
		}
	}
}

// sender maps units to gortmplib writes.
type sender struct {
	w            *gortmplib.Writer
	tracks       []*gortmplib.Track
	video, audio *gortmplib.Track
	vTrack       *tap.Track
	dts264       *h264.DTSExtractor
	dts265       *h265.DTSExtractor
}

func newSender(units Units, first *tap.Unit) (*sender, error) {
	s := &sender{}
	if v := units.Video(); v != nil && first != nil {
		s.vTrack = v
		switch v.Codec {
		case tap.H264:
			var sps, pps []byte
			for _, n := range first.NALUs {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					sps = n
				case h264.NALUTypePPS:
					pps = n
				}
			}
			if sps == nil || pps == nil {
				return nil, errors.New("H264 keyframe without SPS/PPS")
			}
			s.video = &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
			s.dts264 = &h264.DTSExtractor{}
			s.dts264.Initialize()
		case tap.H265:
			var vps, sps, pps []byte
			for _, n := range first.NALUs {
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
				return nil, errors.New("H265 keyframe without VPS/SPS/PPS")
			}
			s.video = &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}
			s.dts265 = &h265.DTSExtractor{}
			s.dts265.Initialize()
		}
		if s.video != nil {
			s.tracks = append(s.tracks, s.video)
		}
	}
	if a := units.Audio(); a != nil && a.Codec == tap.AAC {
		asc := a.AAC
		s.audio = &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &asc}}
		s.tracks = append(s.tracks, s.audio)
	}
	if len(s.tracks) == 0 {
		return nil, fmt.Errorf("%w for RTMP", tap.ErrNoTracks)
	}
	return s, nil
}

// write sends one unit. Audio from before the timeline's start is
// dropped: RTMP timestamps are unsigned.
func (s *sender) write(u *tap.Unit) error {
	t := u.Time()
	if t < 0 {
		return nil
	}
	switch {
	case u.Track.IsVideo() && s.video != nil && len(u.NALUs) > 0:
		switch {
		case s.dts264 != nil:
			dts, err := s.dts264.Extract(u.NALUs, u.PTS)
			if err != nil {
				return nil // a unit the extractor cannot place (broken slice): skipped
			}
			return s.w.WriteH264(s.video, t, ptsDur(dts), u.NALUs)
		case s.dts265 != nil:
			dts, err := s.dts265.Extract(u.NALUs, u.PTS)
			if err != nil {
				return nil
			}
			return s.w.WriteH265(s.video, t, ptsDur(dts), u.NALUs)
		}
	case !u.Track.IsVideo() && s.audio != nil && len(u.Payload) > 0:
		return s.w.WriteMPEG4Audio(s.audio, t, u.Payload)
	}
	return nil
}

// ptsDur converts a 90 kHz time to a duration.
func ptsDur(v int64) time.Duration {
	return time.Duration(v/90000)*time.Second + time.Duration(v%90000)*time.Second/90000
}
