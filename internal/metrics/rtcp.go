package metrics

import (
	"math/bits"
	"time"

	"github.com/pion/rtcp"
	"github.com/prometheus/client_golang/prometheus"
)

// trackStats is what the loss counters need to remember of one SSRC: the
// cumulative loss of the last receiver report, so that only increases are
// added to a counter, and the clock rate that converts jitter to seconds.
type trackStats struct {
	ssrc      uint32
	clockRate uint32
	lost      int32 // cumulative packets lost at the last report
}

// trackFor returns the stats for ssrc, adding them if new. A session has a
// handful of tracks, so a slice beats a map.
func trackFor(tracks *[]trackStats, ssrc uint32) *trackStats {
	for i := range *tracks {
		if (*tracks)[i].ssrc == ssrc {
			return &(*tracks)[i]
		}
	}
	*tracks = append(*tracks, trackStats{ssrc: ssrc})
	return &(*tracks)[len(*tracks)-1]
}

// report applies one reception report block: loss increases go to lost,
// jitter (in RTP timestamp units) to jitter.
func (t *trackStats) report(r *rtcp.ReceptionReport, lost prometheus.Counter, jitter prometheus.Observer) {
	// RFC 3550 §6.4.1: the cumulative number of packets lost is a signed
	// 24-bit integer (duplicates can make it negative).
	total := int32(r.TotalLost<<8) >> 8
	if total > t.lost {
		lost.Add(float64(total - t.lost))
	}
	t.lost = total
	if t.clockRate > 0 {
		jitter.Observe(float64(r.Jitter) / float64(t.clockRate))
	}
}

// nacked is the number of packets a generic NACK asks for: each pair names
// one packet and up to 16 more in its bitmask (RFC 4585 §6.2.1).
func nacked(n *rtcp.TransportLayerNack) int {
	c := 0
	for _, p := range n.Nacks {
		c += 1 + bits.OnesCount16(uint16(p.LostPackets))
	}
	return c
}

// RemoteTrack tells the handle the clock rate of a track the publisher
// sends, for jitter in seconds. It implements rtc.RTCPObserver.
func (p *Publisher) RemoteTrack(ssrc, clockRate uint32) {
	p.rtcpMu.Lock()
	trackFor(&p.tracks, ssrc).clockRate = clockRate
	p.rtcpMu.Unlock()
}

// SentRTCP counts what sluice tells the publisher: receiver reports (loss,
// jitter), NACKs and keyframe requests. It implements rtc.RTCPObserver and
// runs once per outgoing RTCP batch, never per RTP packet.
func (p *Publisher) SentRTCP(pkts []rtcp.Packet) {
	c := &p.e.children
	for _, pkt := range pkts {
		switch pkt := pkt.(type) {
		case *rtcp.ReceiverReport:
			p.rtcpMu.Lock()
			for i := range pkt.Reports {
				trackFor(&p.tracks, pkt.Reports[i].SSRC).report(&pkt.Reports[i], c.lost, c.ingestJitter)
			}
			p.rtcpMu.Unlock()
		case *rtcp.TransportLayerNack:
			c.nacksSent.Add(float64(nacked(pkt)))
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			c.plisSent.Inc()
		}
	}
}

// ReceivedRTCP counts what a viewer reports about the track that sluice
// sends it with ssrc at clockRate: loss, jitter and round-trip time from
// receiver reports, NACKs, and keyframe requests. A compound packet reaches
// every sender it names, so only the parts about ssrc are counted.
func (v *Viewer) ReceivedRTCP(pkts []rtcp.Packet, ssrc, clockRate uint32) {
	c := &v.e.children
	for _, pkt := range pkts {
		var reports []rtcp.ReceptionReport
		switch pkt := pkt.(type) {
		case *rtcp.ReceiverReport:
			reports = pkt.Reports
		case *rtcp.SenderReport:
			reports = pkt.Reports
		case *rtcp.TransportLayerNack:
			if pkt.MediaSSRC == ssrc {
				c.nacksRecv.Add(float64(nacked(pkt)))
			}
		case *rtcp.PictureLossIndication:
			if pkt.MediaSSRC == ssrc {
				c.plisRecv.Inc()
			}
		case *rtcp.FullIntraRequest:
			for _, e := range pkt.FIR {
				if e.SSRC == ssrc {
					c.plisRecv.Inc()
					break
				}
			}
		}
		for i := range reports {
			r := &reports[i]
			if r.SSRC != ssrc {
				continue
			}
			v.rtcpMu.Lock()
			t := trackFor(&v.tracks, ssrc)
			t.clockRate = clockRate
			t.report(r, c.egressLost, c.egressJitter)
			v.rtcpMu.Unlock()
			if rtt, ok := roundTrip(compactNTP(time.Now()), r.LastSenderReport, r.Delay); ok {
				c.rtt.Observe(rtt.Seconds())
			}
		}
	}
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// compactNTP is the middle 32 bits of the NTP timestamp of t: 16 bits of
// seconds, 16 of fraction, the format of LSR and DLSR (RFC 3550 §6.4.1).
func compactNTP(t time.Time) uint32 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return uint32((secs<<32 | frac) >> 16)
}

// roundTrip computes the round-trip time from a report block that arrived
// at now: A − LSR − DLSR (RFC 3550 §6.4.1). A report before any sender
// report (LSR 0) or a result that makes no sense (clock step) gives false.
func roundTrip(now, lsr, dlsr uint32) (time.Duration, bool) {
	if lsr == 0 {
		return 0, false
	}
	d := int32(now - lsr - dlsr)
	if d < 0 || d > 60<<16 {
		return 0, false
	}
	return time.Duration(int64(d) * int64(time.Second) >> 16), true
}
