package srt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	gosrt "github.com/datarhei/gosrt"

	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// read serves a stream to a caller as MPEG-TS until either ends.
func (s *Server) read(conn gosrt.Conn, st *hub.Stream, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// A reader sends nothing but SRT control packets, which gosrt
	// handles; a Read that returns means the connection closed.
	watched := make(chan struct{})
	defer func() {
		_ = conn.Close()
		<-watched
	}()
	go func() {
		defer close(watched)
		defer cancel()
		var b [payloadSize]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	openCtx, openCancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	sub, err := s.cfg.Taps.Open(openCtx, st, tap.Options{Audio: tap.AudioAAC})
	openCancel()
	if err != nil {
		return err
	}
	defer sub.Close()
	log.Info("srt reading")
	defer s.listed("srt-read", st.Name(), conn)()
	s.event(events.ViewerJoined, st.Name(), conn, nil)
	defer s.event(events.ViewerLeft, st.Name(), conn, nil)
	err = Send(ctx, sub, conn)
	if errors.Is(err, hub.ErrEnded) || ctx.Err() != nil {
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

// Send writes a stream's units as MPEG-TS to w (an SRT connection: every
// write is at most one SRT payload of seven TS packets) until the stream
// ends, ctx is done or a write fails.
func Send(ctx context.Context, units Units, w io.Writer) error {
	bw := bufio.NewWriterSize(w, payloadSize)
	var tracks []*mpegts.Track
	var video, audio *mpegts.Track
	var dts264 *h264.DTSExtractor
	var dts265 *h265.DTSExtractor
	if v := units.Video(); v != nil {
		switch v.Codec {
		case tap.H264:
			video = &mpegts.Track{Codec: &tscodecs.H264{}}
			dts264 = &h264.DTSExtractor{}
			dts264.Initialize()
		case tap.H265:
			video = &mpegts.Track{Codec: &tscodecs.H265{}}
			dts265 = &h265.DTSExtractor{}
			dts265.Initialize()
		}
		if video != nil {
			tracks = append(tracks, video)
		}
	}
	a := units.Audio()
	if a != nil {
		switch a.Codec {
		case tap.AAC:
			audio = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: a.AAC}}
		case tap.Opus:
			audio = &mpegts.Track{Codec: &tscodecs.Opus{ChannelCount: max(a.Channels, 1)}} //nolint:staticcheck
		}
		if audio != nil {
			tracks = append(tracks, audio)
		}
	}
	if len(tracks) == 0 {
		return fmt.Errorf("%w for MPEG-TS", tap.ErrNoTracks)
	}
	mw := &mpegts.Writer{W: bw, Tracks: tracks}
	if err := mw.Initialize(); err != nil {
		return err
	}
	for {
		u, err := units.Next(ctx)
		if err != nil {
			return err
		}
		pts := u.PTS
		if !u.Track.IsVideo() {
			pts = pts * 90000 / int64(u.Track.ClockRate)
		}
		if pts < 0 {
			continue // audio from before the timeline's start
		}
		switch {
		case u.Track.IsVideo() && len(u.NALUs) > 0 && dts264 != nil:
			dts, err := dts264.Extract(u.NALUs, pts)
			if err != nil {
				continue // a unit the extractor cannot place: skipped
			}
			err = mw.WriteH264(video, pts, dts, u.NALUs)
			if err != nil {
				return err
			}
		case u.Track.IsVideo() && len(u.NALUs) > 0 && dts265 != nil:
			dts, err := dts265.Extract(u.NALUs, pts)
			if err != nil {
				continue
			}
			if err = mw.WriteH265(video, pts, dts, u.NALUs); err != nil {
				return err
			}
		case !u.Track.IsVideo() && audio != nil && len(u.Payload) > 0:
			if a.Codec == tap.AAC {
				err = mw.WriteMPEG4Audio(audio, pts, [][]byte{u.Payload})
			} else {
				err = mw.WriteOpus(audio, pts, [][]byte{u.Payload})
			}
			if err != nil {
				return err
			}
		default:
			continue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}
