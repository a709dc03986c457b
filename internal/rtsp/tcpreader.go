package rtsp

import (
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// The direct path of a TCP reader. gortsplib writes each packet to each
// reader with a system call of its own, from a goroutine of its own that
// the reader's goroutine wakes per packet: most of the CPU of 100 readers
// was spent there. A TCP reader of a plain RTP session (RTSP over TCP, or
// RTSPS with the AVP profile) instead drains its cursor into a batch of
// interleaved frames and writes the batch with one call, waking once per
// video frame as WHEP's egress workers do. gortsplib still runs the
// session (requests, keep-alives, the client's receiver reports); the
// reader writes its sender reports itself, as gortsplib would.

const (
	// frameWait bounds how long a reader waits for the rest of a video
	// frame before it writes what it has (as whep's workers).
	frameWait = 2 * time.Millisecond
	// batchBytes: a batch this full is written at once.
	batchBytes = 64 << 10
	// reportEvery is the period of the sender reports after the first,
	// which goes out with a media's first packet.
	reportEvery = 5 * time.Second
)

// tcpPath is what a TCP session needs for the direct path.
type tcpPath struct {
	conn         *conn
	medias       map[*description.Media]interleaved
	writeTimeout time.Duration
	stats        *Server
}

// tcpPathOf is the direct path of a session that plays over TCP on a
// connection of the server's in the plain profile; nil otherwise (UDP,
// SRTP, a tunnel), and gortsplib writes its packets.
func (s *Server) tcpPathOf(sc *gortsplib.ServerConn, ss *gortsplib.ServerSession, sess *session) *tcpPath {
	t := ss.Transport()
	c := connOf(sc)
	if c == nil || t == nil || t.Protocol != gortsplib.ProtocolTCP || t.Profile != headers.TransportProfileAVP {
		return nil
	}
	return &tcpPath{conn: c, medias: sess.tcp, writeTimeout: s.cfg.WriteTimeout, stats: s}
}

// covers reports whether t knows the channel of every media the reader
// writes (by hub track: its media index, -1 if not taken).
func (t *tcpPath) covers(medias []*description.Media, byTrack []int) bool {
	if t == nil {
		return false
	}
	n := 0
	for _, i := range byTrack {
		if i < 0 {
			continue
		}
		if _, ok := t.medias[medias[i]]; !ok {
			return false
		}
		n++
	}
	return n > 0
}

func (r *reader) runDirect() {
	// Frames follow the PLAY response on the wire.
	select {
	case <-r.direct.playing:
	case <-r.ctx.Done():
		return
	}
	r.stats.directReaders.Add(1)
	defer r.stats.directReaders.Add(-1)
	r.buf = make([]byte, 0, batchBytes+4+maxFrame)
	waiter := hub.NewWaiter()
	frame := time.NewTimer(time.Hour)
	frame.Stop()
	ended := r.st.Done()
	waiting, pass := false, true
	for {
		// Taken before the pass: a write during the pass closes it. While
		// a video frame is open only its end (or another track's packet)
		// wakes the reader.
		var wake <-chan struct{}
		if pass {
			wake = r.st.Wait(waiter)
		} else {
			wake = r.st.WaitFrameEnd(waiter)
		}
		if !pass && !r.st.FrameOpen() {
			pass = true
		}
		if pass {
			if waiting {
				waiting = false
				frame.Stop()
			}
			if err := r.pump(); err != nil {
				// The client is gone or stuck past the write timeout, or
				// the publisher left for good: end the session.
				r.ss.Close()
				return
			}
		}
		pass = true
		select {
		case <-wake:
			if r.st.FrameOpen() {
				pass = false
				if !waiting {
					waiting = true
					frame.Reset(frameWait)
				}
			}
		case <-frame.C:
			waiting = false
		case <-ended:
			ended = nil // the next pass reads the rest, then the end
		case <-r.ctx.Done():
			return
		}
	}
}

// maxFrame is the largest RTP packet an interleaved frame carries.
const maxFrame = 0xffff

// pump writes what the cursor holds, in batches; an error ends the reader.
func (r *reader) pump() error {
	for {
		p, restart, ok, err := r.cursor.TryNext()
		if err != nil {
			if ferr := r.flush(); ferr != nil {
				return ferr
			}
			return err
		}
		if !ok {
			break
		}
		r.appendRTP(p, restart)
		if len(r.buf) >= batchBytes {
			if err := r.flush(); err != nil {
				return err
			}
		}
	}
	r.appendReports(time.Now())
	return r.flush()
}

func (r *reader) appendRTP(p *hub.Packet, restart bool) {
	var h rtp.Header
	_, o := r.rewrite(p, restart, &h)
	if o == nil {
		return
	}
	hn := h.MarshalSize()
	n := hn + len(p.Payload)
	if n > maxFrame {
		return // cannot be framed; no publisher path makes one
	}
	b := r.buf
	b = append(b, '$', byte(o.channel), byte(n>>8), byte(n))
	hdr := len(b)
	b = b[:hdr+hn]
	if _, err := h.MarshalTo(b[hdr:]); err != nil {
		r.buf = b[:hdr-4]
		return
	}
	r.buf = append(b, p.Payload...)
	r.batchRTP++
	o.packets++
	o.octets += uint32(len(p.Payload))
	// The sender report's times are worked out from these when one is due.
	o.lastTS, o.lastTrack, o.lastSrcTS, o.lastArrived = h.Timestamp, p.Track, p.Timestamp, p.Arrived
}

// appendReports adds the sender reports due: a media's first with its
// first packet, then every reportEvery. The report's NTP and RTP times are
// one instant: now, and the last packet's RTP time advanced by the time
// since it arrived.
func (r *reader) appendReports(now time.Time) {
	for i := range r.out {
		o := &r.out[i]
		if o.packets == 0 || now.Before(o.reportAt) {
			continue
		}
		o.reportAt = now.Add(reportEvery)
		since := max(now.Sub(time.Unix(0, o.lastArrived)), 0)
		sr := rtcp.SenderReport{
			SSRC:        o.ssrc,
			NTPTime:     media.ToNTP(r.wallClock(o.lastTrack, o.lastSrcTS, o).Add(since)),
			RTPTime:     o.lastTS + uint32(since*time.Duration(o.clock)/time.Second),
			PacketCount: o.packets,
			OctetCount:  o.octets,
		}
		b, err := sr.Marshal()
		if err != nil {
			continue
		}
		r.buf = append(r.buf, '$', byte(o.channel+1), byte(len(b)>>8), byte(len(b)))
		r.buf = append(r.buf, b...)
	}
}

// flush writes the batch.
func (r *reader) flush() error {
	if len(r.buf) == 0 {
		return nil
	}
	err := r.direct.writeBatch(r.buf, r.writeTimeout)
	r.stats.directWrites.Add(1)
	r.stats.directRTP.Add(r.batchRTP)
	r.buf, r.batchRTP = r.buf[:0], 0
	return err
}
