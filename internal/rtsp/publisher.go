package rtsp

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// A publication is what an RTSP publisher (a RECORD session) or a pulled
// source (a gortsplib client playing a camera) feeds into one hub stream:
// its medias mapped to hub tracks, each through an ingest.Track (the
// reorder window for UDP, loss counted, keyframe requests; RTSP has no
// NACK). Its ingest.Set is the stream's hub.Publisher: keyframe requests
// go back as RTCP PLIs, which cameras may ignore.
type publication struct {
	ingest.Set
	st       *hub.Writer
	tracks   []*pubTrack
	src      packetSource
	attached atomic.Bool // packets flow: the source's medias are set up
	closed   atomic.Bool
	// protocol ("rtsp" or "rtsps") and remote (the publisher's address,
	// or the pulled camera's host:port) are the stream's origin as
	// GET /v1/streams shows it.
	protocol, remote string
}

// Protocol is "rtsp" or "rtsps": the protocol the stream comes in by.
func (p *publication) Protocol() string { return p.protocol }

// Remote is the publisher's address, or the pulled camera's host:port.
func (p *publication) Remote() string { return p.remote }

type pubTrack struct {
	medi  *description.Media
	forma format.Format
	codec media.Codec
	index int // in the hub stream
	in    *ingest.Track
}

// packetSource is how a publication registers for a session's packets:
// a gortsplib.ServerSession or a gortsplib.Client.
type packetSource interface {
	OnPacketRTP(medi *description.Media, forma format.Format, cb gortsplib.OnPacketRTPFunc)
	OnPacketRTCP(medi *description.Media, cb gortsplib.OnPacketRTCPFunc)
	WritePacketRTCP(medi *description.Media, pkt rtcp.Packet) error
}

// accepted maps the medias of a description to hub codecs: the first
// format of each media that sluice carries. It fails if none is.
func accepted(desc *description.Session) ([]*pubTrack, error) {
	var out []*pubTrack
	var refused []string
	for _, m := range desc.Medias {
		if m.IsBackChannel {
			continue
		}
		for _, f := range m.Formats {
			c, err := codecOf(f)
			if err != nil {
				refused = append(refused, strings.TrimPrefix(err.Error(), ErrCodec.Error()+": "))
				continue
			}
			out = append(out, &pubTrack{medi: m, forma: f, codec: c})
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none of %d medias in %s (%s)", ErrCodec, len(desc.Medias), AcceptedCodecs, strings.Join(refused, "; "))
	}
	return out, nil
}

// publish claims the named stream for the tracks: a second publisher is
// refused (hub.ErrBusy), one that comes back within the reconnect grace
// continues the stream.
func publish(h *hub.Hub, name string, tracks []*pubTrack, src packetSource, o ingest.Options, protocol, remote string) (*publication, error) {
	p := &publication{tracks: tracks, src: src, protocol: protocol, remote: remote}
	codecs := make([]media.Codec, len(tracks))
	for i, t := range tracks {
		codecs[i] = t.codec
	}
	st, err := h.Publish(name, p, codecs)
	if err != nil {
		return nil, err
	}
	p.st = st
	for _, t := range tracks {
		t.index = st.AddTrack(t.codec)
		medi := t.medi
		t.in = ingest.NewTrack(o, ingest.TrackConfig{Index: t.index, Codec: t.codec, RTCP: func(pkts []rtcp.Packet) error {
			if !p.attached.Load() || p.closed.Load() {
				return nil // before RECORD/PLAY the medias are not set up
			}
			for _, pkt := range pkts {
				if err := src.WritePacketRTCP(medi, pkt); err != nil {
					return err
				}
			}
			return nil
		}}, st)
		p.Add(t.in)
	}
	return p, nil
}

// attach starts taking the source's packets (once, before they flow:
// at RECORD, or before a client's PLAY).
func (p *publication) attach() {
	for _, t := range p.tracks {
		in := t.in
		p.src.OnPacketRTP(t.medi, t.forma, func(pkt *rtp.Packet) {
			if !p.attached.Load() {
				p.attached.Store(true) // the first packet after hold
			}
			in.WriteRTP(pkt)
		})
		p.src.OnPacketRTCP(t.medi, func(pkt rtcp.Packet) {
			if sr, ok := pkt.(*rtcp.SenderReport); ok {
				in.SenderReport(sr)
			}
		})
	}
	p.attached.Store(true)
	for _, t := range p.tracks {
		if t.codec.Kind() == media.KindVideo {
			p.st.RequestTrackKeyframe(t.index)
		}
	}
}

// hold stops feedback until the next packet: a client that switches
// from UDP to TCP sets its medias up again meanwhile.
func (p *publication) hold() { p.attached.Store(false) }

// close leaves the stream: it waits the reconnect grace for the publisher
// to come back, then ends.
func (p *publication) close() {
	if !p.closed.CompareAndSwap(false, true) {
		return
	}
	for _, t := range p.tracks {
		t.in.Close()
	}
	p.st.Detach()
}
