package rtsp

import (
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
)

// ingestTrack writes one published RTP track into the hub. It has the
// shape of internal/ingest's Track (WriteRTP, Close), which replaces it
// once that package is on main: until then packets go into the stream
// as they come, each with a payload buffer of its own (the ring shares it
// with every reader, so it can never be reused).
type ingestTrack struct {
	index int
	out   *hub.Stream
}

func newIngestTrack(index int, out *hub.Stream) *ingestTrack {
	return &ingestTrack{index: index, out: out}
}

// WriteRTP copies pkt into the stream. One goroutine at a time.
func (t *ingestTrack) WriteRTP(pkt *rtp.Packet) {
	if len(pkt.Payload) == 0 {
		return // padding only (pion strips the padding from Payload)
	}
	p := &hub.Packet{
		Track:          t.index,
		Marker:         pkt.Marker,
		PayloadType:    pkt.PayloadType,
		SequenceNumber: pkt.SequenceNumber,
		Timestamp:      pkt.Timestamp,
		Payload:        append([]byte(nil), pkt.Payload...),
	}
	t.out.Write(p)
}

// Close releases the track.
func (t *ingestTrack) Close() {}
