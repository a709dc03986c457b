package client

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simulcast is a Publisher's video sent as several layers, one RTP
// stream (SSRC) per RID.
type simulcast struct {
	sender *webrtc.RTPSender
	tr     *webrtc.RTPTransceiver
	layers []*layerTrack
	mtu    uint16

	midID, ridID uint8 // header extension ids, once negotiated
	mid          string
}

type layerTrack struct {
	rid   string
	track *webrtc.TrackLocalStaticRTP
	plis  atomic.Int64

	mu        sync.Mutex
	payloader codecs.H264Payloader
	seq       uint16
	ts0       uint32
	pkt       rtp.Packet
	sent      atomic.Uint64
}

// addSimulcast adds the video transceiver with one encoding per RID.
func addSimulcast(p *Publisher, c webrtc.RTPCodecCapability, rids []string) (*simulcast, error) {
	sc := &simulcast{mtu: p.mtu}
	for i, rid := range rids {
		t, err := webrtc.NewTrackLocalStaticRTP(c, "video", "sluice-client", webrtc.WithRTPStreamID(rid))
		if err != nil {
			return nil, err
		}
		// Each layer numbers its packets and clocks its frames from random
		// values of its own, as a browser's do.
		l := &layerTrack{rid: rid, track: t, seq: uint16(rand.Uint32()), ts0: rand.Uint32()}
		l.pkt.Version = 2
		sc.layers = append(sc.layers, l)
		if i == 0 {
			tr, err := p.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return nil, err
			}
			sc.tr, sc.sender = tr, tr.Sender()
			p.senders[0] = sc.sender
			continue
		}
		if err := sc.sender.AddEncoding(t); err != nil {
			return nil, err
		}
	}
	for _, l := range sc.layers {
		p.wg.Add(1)
		go p.readRTCPFrom(func(b []byte) (int, interceptor.Attributes, error) { return sc.sender.ReadSimulcast(b, l.rid) }, &l.plis)
	}
	return sc, nil
}

// bind reads the negotiated header extension ids and the mid.
func (sc *simulcast) bind() error {
	for _, e := range sc.sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			sc.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			sc.ridID = uint8(e.ID)
		}
	}
	sc.mid = sc.tr.Mid()
	if sc.midID == 0 || sc.ridID == 0 || sc.mid == "" {
		return errors.New("simulcast: the answer has no MID or RID header extension")
	}
	return nil
}

// withoutVideoSSRCs takes the a=ssrc and a=ssrc-group lines out of the
// video sections of an offer: browsers send simulcast layers without
// them, and the receiver tells the layers apart by their RID extension.
func withoutVideoSSRCs(offer string) string {
	lines := strings.SplitAfter(offer, "\n")
	out := lines[:0]
	video := false
	for _, l := range lines {
		if strings.HasPrefix(l, "m=") {
			video = strings.HasPrefix(l, "m=video")
		}
		if video && strings.HasPrefix(l, "a=ssrc") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// WriteH264Layer packetizes one access unit of simulcast layer i (the
// i-th RID of PublishOptions.Simulcast) and sends it on that layer's SSRC
// with the MID and RID header extensions; pts is the presentation time
// from the start of the stream, the same clock for every layer.
func (p *Publisher) WriteH264Layer(i int, au [][]byte, pts time.Duration) error {
	sc := p.layers
	if sc == nil || i < 0 || i >= len(sc.layers) {
		return fmt.Errorf("publisher has no simulcast layer %d", i)
	}
	l := sc.layers[i]
	l.mu.Lock()
	defer l.mu.Unlock()
	var payloads [][]byte
	for _, nalu := range au {
		payloads = append(payloads, l.payloader.Payload(sc.mtu, nalu)...)
	}
	ts := l.ts0 + uint32(int64(pts)*90000/int64(time.Second))
	for k, pl := range payloads {
		h := &l.pkt.Header
		h.Extension, h.Extensions = false, h.Extensions[:0]
		if err := h.SetExtension(sc.midID, []byte(sc.mid)); err != nil {
			return err
		}
		if err := h.SetExtension(sc.ridID, []byte(l.rid)); err != nil {
			return err
		}
		h.Marker = k == len(payloads)-1
		h.SequenceNumber = l.seq
		h.Timestamp = ts
		l.pkt.Payload = pl
		l.seq++
		if err := l.track.WriteRTP(&l.pkt); err != nil {
			return err
		}
		l.sent.Add(1)
	}
	return nil
}

// LayerKeyframeRequests returns how many PLI and FIR messages arrived for
// simulcast layer i (its SSRC).
func (p *Publisher) LayerKeyframeRequests(i int) int {
	if p.layers == nil || i < 0 || i >= len(p.layers.layers) {
		return 0
	}
	return int(p.layers.layers[i].plis.Load())
}

// LayerSentPackets returns how many RTP packets simulcast layer i sent.
func (p *Publisher) LayerSentPackets(i int) uint64 {
	if p.layers == nil || i < 0 || i >= len(p.layers.layers) {
		return 0
	}
	return p.layers.layers[i].sent.Load()
}
