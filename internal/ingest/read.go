package ingest

import (
	"errors"
	"net"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// RTPReader is a received RTP stream that a Track reads with ReadFrom: a
// pion *webrtc.TrackRemote.
type RTPReader interface {
	Read(b []byte) (int, interceptor.Attributes, error)
	SetReadDeadline(t time.Time) error
}

// RTCPReader is the RTCP of a received track: a pion *webrtc.RTPReceiver's
// Read (or ReadSimulcast for a layer).
type RTCPReader func(b []byte) (int, interceptor.Attributes, error)

// ReadFrom moves r's RTP through the track into the ring until r ends.
// Each packet gets its own payload buffer: the ring shares it with every
// viewer, so it can never be reused.
//
// pion hands out RTX repairs only from inside Read, before it waits for a
// media packet: a repair that arrives while Read waits stays queued until
// the next media packet or the deadline. So while the reorder window
// waits for a gap, Read has a deadline, and when it passes one more Read
// with a deadline already past collects queued repairs before the gap is
// given up.
func (t *Track) ReadFrom(r RTPReader) {
	buf := make([]byte, 1500)
	var h rtp.Header
	var armed time.Time // the read deadline set; zero for none
	polled := false
	for {
		dl, _ := t.wake()
		if polled {
			dl = pastDeadline
		}
		if !dl.Equal(armed) {
			_ = r.SetReadDeadline(dl)
			armed = dl
		}
		n, _, err := r.Read(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if polled = !polled; !polled {
					t.tick(now)
				}
				continue
			}
			return
		}
		polled = false
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		end := n
		if h.Padding && n > hl {
			end -= int(buf[n-1])
		}
		t.received(&h, buf[hl:max(end, hl)], now)
	}
}

// received copies one packet's payload into a spare packet and pushes
// it; an empty payload (padding only) fills its place in the sequence.
func (t *Track) received(h *rtp.Header, payload []byte, now time.Time) {
	if t.ssrc.Load() == 0 {
		t.ssrc.Store(h.SSRC)
	}
	if len(payload) == 0 {
		t.push(h.SequenceNumber, nil, now)
		return
	}
	p := t.spares.packet(payload)
	p.Track = t.cfg.Index
	p.Marker = h.Marker
	p.PayloadType = h.PayloadType
	p.SequenceNumber = h.SequenceNumber
	p.Timestamp = h.Timestamp
	t.push(h.SequenceNumber, p, now)
}

// pastDeadline makes a Read return at once unless something is queued.
var pastDeadline = time.Unix(1, 0)

// ReadRTCP keeps the track's sender reports from read until it ends
// (SenderReport). Draining the receiver's RTCP is also what pion's
// interceptors need.
func (t *Track) ReadRTCP(read RTCPReader) {
	buf := make([]byte, 1500)
	for {
		n, _, err := read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				t.SenderReport(sr)
			}
		}
	}
}
