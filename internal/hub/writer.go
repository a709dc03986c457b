package hub

import "github.com/sluice-media/sluice/internal/media"

// Writer is the publishing side of a stream: what its source calls to
// feed it (Hub.Publish returns one per publisher), or what a Deriver
// writes a derived track with. Stream keeps what readers call.
type Writer struct {
	s   *Stream
	pub Publisher // nil for a deriver's writer
}

// Stream is the stream the writer feeds, for what readers see of it.
func (w *Writer) Stream() *Stream {
	if w == nil {
		return nil
	}
	return w.s
}

// Name is the stream's name.
func (w *Writer) Name() string { return w.s.name }

// AddTrack declares a track the publisher sends and returns its index for
// packets (see Stream.Tracks); the stream is ready once every negotiated
// track was added.
func (w *Writer) AddTrack(c media.Codec) int { return w.s.addTrack(c) }

// AddLayer declares one simulcast layer (rid) of the media section mid
// and returns its track index (see layer.go).
func (w *Writer) AddLayer(c media.Codec, mid, rid string) int { return w.s.addLayer(c, mid, rid) }

// Write appends a copy of p, a packet of track p.Track, to the ring; p
// and its payload may be reused once Write returns.
func (w *Writer) Write(p *Packet) { w.s.write(p) }

// SetSenderReport records the newest RTCP sender report of a track.
func (w *Writer) SetSenderReport(track int, ntp uint64, rtp uint32) {
	w.s.setSenderReport(track, ntp, rtp)
}

// SetVideoInfo records what a video track's parameter sets say.
func (w *Writer) SetVideoInfo(track int, info media.VideoInfo) { w.s.setVideoInfo(track, info) }

// RequestTrackKeyframe asks the publisher for a keyframe on one track,
// rate-limited as a reader's request is (Stream.RequestTrackKeyframe):
// what ingest calls after unrecoverable loss.
func (w *Writer) RequestTrackKeyframe(track int) bool { return w.s.RequestTrackKeyframe(track) }

// Detach is how the publisher leaves: the stream waits for a successor
// for the reconnect grace period, then ends. A writer whose publisher was
// replaced changes nothing.
func (w *Writer) Detach() { w.s.detach(w.pub) }

// Detached reports whether the stream is waiting for a publisher to come
// back.
func (w *Writer) Detached() bool { return w.s.Detached() }

// End removes the stream from the hub and wakes every cursor, which then
// returns ErrEnded. It is idempotent.
func (w *Writer) End() { w.s.end(ErrEnded) }
