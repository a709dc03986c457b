package rtsp

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
)

// A reader is one RTSP client playing a hub stream. Its packets come from
// a cursor of its own in the stream's ring, like a WHEP viewer's: it joins
// at the newest cached keyframe, and skips to the newest keyframe when it
// falls behind (its gortsplib write queue is full). The payload bytes are
// the publisher's; the header is the reader's own: SSRC (its own
// gortsplib.ServerStream's), payload type from its SDP, sequence numbers
// and timestamps shifted by offsets that start at random values and go on
// without a gap across skips (RFC 3550 §5.1).
//
// gortsplib sends the RTCP sender reports from the (RTP timestamp, NTP)
// pair of each packet; the NTP time is the publisher's wall clock from its
// own sender reports (hub.Stream.WallClock), so players keep the
// publisher's audio/video alignment.
type reader struct {
	ss     *gortsplib.ServerSession
	st     *hub.Stream
	cursor *hub.Cursor
	medias []*description.Media // by media index
	media  []int                // by hub track: media index, -1 if not taken
	out    []outState           // by media index

	// direct: a TCP reader whose frames go straight to its connection
	// in batches (tcpreader.go), not through gortsplib's write queue.
	direct       *conn
	writeTimeout time.Duration
	stats        *Server // counts the direct path's writes
	buf          []byte  // the batch being filled
	batchRTP     uint64  // RTP packets in it

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	drops  atomic.Uint64 // skips because the client's write queue was full
}

// outState is one media's header rewriting; owned by the reader's
// goroutine.
type outState struct {
	clock    uint32
	pt       uint8
	started  bool
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16
	// The NTP time of packets before the first publisher sender report:
	// the arrival of the first packet, advanced by RTP time.
	anchorTS   uint32
	anchorWall time.Time

	// The direct path's (tcpreader.go): where the media goes, and what
	// its RTCP sender reports say.
	ssrc        uint32
	channel     int
	packets     uint32
	octets      uint32
	lastTS      uint32    // the last packet's RTP time, as sent
	lastTrack   int       // its hub track
	lastSrcTS   uint32    // its RTP time in the stream
	lastArrived int64     // when the hub took it (hub.Packet.Arrived)
	reportAt    time.Time // the next sender report is due; zero: at the first packet
}

// newReader makes the reader of a session that set up the medias of desc
// it takes (take: the hub track of each). tcp, where the session is TCP
// interleaved on a conn of the server's, puts each media's frames straight
// on the connection.
func newReader(ss *gortsplib.ServerSession, st *hub.Stream, cursor *hub.Cursor, desc *description.Session, take []int, tcp *tcpPath) *reader {
	r := &reader{ss: ss, st: st, cursor: cursor, medias: desc.Medias, out: make([]outState, len(desc.Medias))}
	n := 0
	for _, t := range take {
		n = max(n, t+1)
	}
	r.media = make([]int, n)
	for i := range r.media {
		r.media[i] = -1
	}
	// A client may set up only some of the medias (video without audio):
	// gortsplib cannot write to the others.
	setup := map[*description.Media]bool{}
	for _, m := range ss.Medias() {
		setup[m] = true
	}
	for i, t := range take {
		if !setup[desc.Medias[i]] {
			continue
		}
		r.media[t] = i
		f := desc.Medias[i].Formats[0]
		r.out[i].clock = uint32(f.ClockRate())
		r.out[i].pt = f.PayloadType()
	}
	if tcp.covers(desc.Medias, r.media) {
		r.direct, r.writeTimeout, r.stats = tcp.conn, tcp.writeTimeout, tcp.stats
		for m, il := range tcp.medias {
			for i, dm := range desc.Medias {
				if dm == m {
					r.out[i].channel, r.out[i].ssrc = il.channel, il.ssrc
				}
			}
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// start begins forwarding at the newest cached keyframe.
func (r *reader) start() {
	r.cursor.SeekKeyframe()
	if r.direct != nil {
		r.wg.Go(r.runDirect)
		return
	}
	r.wg.Go(r.run)
}

// close stops forwarding, waits for the goroutine and releases the
// cursor. It is idempotent.
func (r *reader) close() {
	r.cancel()
	r.wg.Wait()
	r.cursor.Close()
}

func (r *reader) run() {
	var pkt rtp.Packet
	for {
		p, restart, err := r.cursor.Next(r.ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				// The publisher left for good: end the client's session
				// (its TEARDOWN-less end; RTSP has no "stream ended").
				r.ss.Close()
			}
			return
		}
		i, o := r.rewrite(p, restart, &pkt.Header)
		if o == nil {
			continue
		}
		pkt.Payload = p.Payload
		err = r.ss.WritePacketRTPWithNTP(r.medias[i], &pkt, r.ntp(p, o))
		var full liberrors.ErrServerWriteQueueFull
		if errors.As(err, &full) {
			// The client does not keep up: go on at the newest keyframe
			// rather than feed it a stale queue.
			r.drops.Add(1)
			r.cursor.SeekKeyframe()
		}
	}
}

// rewrite fills h with the reader's header for p: its media's payload
// type, sequence numbers and timestamps shifted by the media's offsets.
// o is nil for a packet of a track the reader does not take.
func (r *reader) rewrite(p *hub.Packet, restart bool, h *rtp.Header) (i int, o *outState) {
	if p.Track >= len(r.media) || r.media[p.Track] < 0 {
		return 0, nil
	}
	i = r.media[p.Track]
	o = &r.out[i]
	switch {
	case !o.started:
		o.started = true
		o.seqDelta = uint16(rand.Uint32()) - p.SequenceNumber
		o.tsDelta = rand.Uint32()
		o.anchorTS, o.anchorWall = p.Timestamp, time.Unix(0, p.Arrived)
	case restart:
		o.seqDelta = o.lastSeq + 1 - p.SequenceNumber
	}
	*h = rtp.Header{
		Version:        2,
		Marker:         p.Marker,
		PayloadType:    o.pt,
		SequenceNumber: p.SequenceNumber + o.seqDelta,
		Timestamp:      p.Timestamp + o.tsDelta,
		SSRC:           o.ssrc,
	}
	o.lastSeq = h.SequenceNumber
	return i, o
}

// ntp is the wall-clock time of a packet: the publisher's, from its sender
// reports, else from the first packet's arrival.
func (r *reader) ntp(p *hub.Packet, o *outState) time.Time {
	return r.wallClock(p.Track, p.Timestamp, o)
}

// wallClock is ntp of the packet of track at the stream's RTP time ts.
func (r *reader) wallClock(track int, ts uint32, o *outState) time.Time {
	if t, ok := r.st.WallClock(track, ts); ok {
		return t
	}
	d := int64(int32(ts-o.anchorTS)) * int64(time.Second) / int64(max(o.clock, 1))
	return o.anchorWall.Add(time.Duration(d))
}
