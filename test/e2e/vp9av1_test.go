package e2e

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/codec"
	"github.com/sluice-media/sluice/internal/config"
)

var vp9av1Feedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}

// rawPublisher publishes one video track in exactly the codecs given, over
// WHIP, as a browser that offers them would; it returns the track to write
// RTP to and the status of the WHIP POST (and the body on failure).
func rawPublisher(t *testing.T, url string, offered []webrtc.RTPCodecParameters) (*webrtc.TrackLocalStaticRTP, int, string) {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range offered {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(offered[0].RTPCodecCapability, "video", "raw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	status, _, body := do(t, http.MethodPost, url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if status != http.StatusCreated {
		return nil, status, body
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatalf("the answer does not apply: %v\n%s", err, body)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("publisher not connected within 10 s")
	}
	return track, status, body
}

// TestVP9AV1 publishes VP9 and AV1 over WHIP, as Chromium offers them
// alone, and plays each over WHEP: a viewer joining in the middle of a
// group of pictures starts at its keyframe (the GOP cache found it), and
// gets the publisher's payloads unchanged. A publisher offering only a
// codec that webrtc.video_codecs leaves out gets 406 with the reason, not
// an answer it would reject.
func TestVP9AV1(t *testing.T) {
	base := startServer(t, nil)
	restricted := startServer(t, func(c *config.Config) { c.WebRTC.VideoCodecs = []string{"H264", "VP8"} })
	vp9 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: vp9av1Feedback}, PayloadType: 98}
	av1 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, SDPFmtpLine: "level-idx=5;profile=0;tier=0", RTCPFeedback: vp9av1Feedback}, PayloadType: 45}
	for _, c := range []struct {
		name      string
		codec     webrtc.RTPCodecParameters
		key, next []byte // a keyframe's payload and a following frame's
		isKey     codec.KeyframeFunc
	}{
		// VP9: descriptor B|E (P clear), uncompressed header KEY_FRAME;
		// then P set and an inter frame header.
		{"VP9", vp9, []byte{0x0c, 0x82, 0x49, 0x83, 0x42, 0x00}, []byte{0x4c, 0x86, 0x00, 0x01}, codec.VP9Keyframe},
		// AV1: aggregation header W=2 N=1, a sequence header OBU and a
		// frame OBU; then W=1 and a frame OBU.
		{"AV1", av1, []byte{0x28, 0x02, 0x08, 0x00, 0x32, 0x10, 0x00}, []byte{0x10, 0x32, 0x30, 0x00}, codec.AV1Keyframe},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if _, status, body := rawPublisher(t, restricted+"/whip/"+c.name, []webrtc.RTPCodecParameters{c.codec}); status != http.StatusNotAcceptable || !strings.Contains(body, c.name) {
				t.Errorf("%s to a server taking H264 and VP8: %d %q, want 406 naming %s", c.name, status, body, c.name)
			}

			track, status, body := rawPublisher(t, base+"/whip/"+c.name, []webrtc.RTPCodecParameters{c.codec})
			if status != http.StatusCreated {
				t.Fatalf("WHIP POST: %d %s", status, body)
			}
			// One frame a packet, 25 a second: a keyframe, then others.
			ts0, seq0 := uint32(1234), uint16(40000)
			write := func(i int) error {
				p := c.next
				if i%50 == 0 {
					p = c.key
				}
				return track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq0 + uint16(i), Timestamp: ts0 + uint32(i*3600)}, Payload: p})
			}
			sent := make(chan int, 1000)
			feedCtx, stop := context.WithCancel(ctx)
			fed := make(chan struct{})
			go func() {
				defer close(fed)
				tick := time.NewTicker(40 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < 500; i++ {
					if err := write(i); err != nil {
						return
					}
					sent <- i
					select {
					case <-feedCtx.Done():
						return
					case <-tick.C:
					}
				}
			}()
			defer func() { stop(); <-fed }()
			for i := range sent { // join in the middle of the first group
				if i == 5 {
					break
				}
			}

			first := make(chan []byte, 1)
			got := make(chan []byte, 100)
			v, err := client.View(ctx, base+"/whep/"+c.name, client.ViewOptions{
				VideoCodecs: []webrtc.RTPCodecParameters{{RTPCodecCapability: c.codec.RTPCodecCapability}},
				NoAudio:     true,
				OnRTP: func(kind webrtc.RTPCodecType, p *rtp.Packet) {
					if kind != webrtc.RTPCodecTypeVideo {
						return
					}
					b := append([]byte(nil), p.Payload...)
					select {
					case first <- b:
					default:
					}
					select {
					case got <- b:
					default:
					}
				},
			})
			if err != nil {
				t.Fatalf("WHEP: %v", err)
			}
			defer v.Close()
			select {
			case p := <-first:
				if !c.isKey(p) || string(p) != string(c.key) {
					t.Fatalf("first packet %x, want the keyframe %x", p, c.key)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no packet within 5 s")
			}
			for range 5 {
				select {
				case p := <-got:
					if string(p) != string(c.key) && string(p) != string(c.next) {
						t.Fatalf("payload %x was not sent", p)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("packets stopped")
				}
			}
			if vc, _ := v.VideoCodec(); !strings.EqualFold(vc.MimeType, c.codec.MimeType) {
				t.Errorf("viewer negotiated %s", vc.MimeType)
			}
		})
	}
}
