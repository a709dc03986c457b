package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	mcav1 "github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	mcvp9 "github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// rtspVideoCase is one codec of TestRTSPReadVP9AV1: its WebRTC codec, a
// packetizer of clip frame i, a depacketizer, and what ffprobe calls it.
type rtspVideoCase struct {
	name   string
	codec  webrtc.RTPCodecParameters
	frames int
	encode func(i int) ([]*rtp.Packet, error)
	// newDecoder returns a decoder of one frame per call (nil, nil while
	// it needs more packets) and whether a frame is a key frame.
	newDecoder func() func(*rtp.Packet) ([]byte, error)
	key        func([]byte) bool
	format     func(format.Format) bool
	probe      string
}

func vp9Case(t *testing.T) rtspVideoCase {
	clip := vp9Clip(t)
	enc := &rtpvp9.Encoder{PayloadType: uint8(vp9Codec.PayloadType)}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	return rtspVideoCase{
		name: "VP9", codec: vp9Codec, frames: len(clip),
		encode: func(i int) ([]*rtp.Packet, error) { return enc.Encode(clip[i%len(clip)]) },
		newDecoder: func() func(*rtp.Packet) ([]byte, error) {
			d := &rtpvp9.Decoder{}
			_ = d.Init()
			return func(p *rtp.Packet) ([]byte, error) {
				f, err := d.Decode(p)
				if errors.Is(err, rtpvp9.ErrMorePacketsNeeded) {
					return nil, nil
				}
				return f, err
			}
		},
		key:    mcvp9.IsRandomAccess,
		format: func(f format.Format) bool { _, ok := f.(*format.VP9); return ok },
		probe:  "vp9",
	}
}

func av1Case(t *testing.T) rtspVideoCase {
	clip := av1Clip(t)
	enc := &rtpav1.Encoder{PayloadType: 45}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	codec := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: vp9av1Feedback}, PayloadType: 45}
	return rtspVideoCase{
		name: "AV1", codec: codec, frames: len(clip),
		encode: func(i int) ([]*rtp.Packet, error) { return enc.Encode(clip[i%len(clip)]) },
		newDecoder: func() func(*rtp.Packet) ([]byte, error) {
			d := &rtpav1.Decoder{}
			_ = d.Init()
			return func(p *rtp.Packet) ([]byte, error) {
				tu, err := d.Decode(p)
				if errors.Is(err, rtpav1.ErrMorePacketsNeeded) {
					return nil, nil
				}
				if err != nil {
					return nil, err
				}
				return mcav1.Bitstream(tu).Marshal()
			}
		},
		key: func(b []byte) bool {
			var bs mcav1.Bitstream
			return bs.Unmarshal(b) == nil && mcav1.IsRandomAccess2(bs)
		},
		format: func(f format.Format) bool { _, ok := f.(*format.AV1); return ok },
		probe:  "av1",
	}
}

// TestRTSPReadVP9AV1: a pion WHIP publisher of VP9 (and one of AV1); a
// gortsplib reader of rtsp://…/name gets a VP9 (AV1) format in the
// description and, from a key frame on, the published frames in order,
// byte for byte. ffprobe lists the codec (VP9; ffmpeg 5.1 has no AV1 RTP
// depacketizer, so for AV1 it is only logged).
func TestRTSPReadVP9AV1(t *testing.T) {
	for _, mk := range []func(*testing.T) rtspVideoCase{vp9Case, av1Case} {
		c := mk(t)
		t.Run(c.name, func(t *testing.T) {
			srv := startRTSPServer(t, false)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			name := strings.ToLower(c.name) + "rtsp"
			track, status, body := rawPublisher(t, srv.base+"/whip/"+name, []webrtc.RTPCodecParameters{c.codec})
			if status != 201 {
				t.Fatalf("WHIP POST: %d %s", status, body)
			}
			// What the reader must get: each clip frame through the same
			// packetizer and depacketizer, without sluice between.
			want := make([][]byte, c.frames)
			dec := c.newDecoder()
			for i := range want {
				pkts, err := c.encode(i)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range pkts {
					if f, err := dec(p); err != nil {
						t.Fatal(err)
					} else if f != nil {
						want[i] = f
					}
				}
			}
			defer feedFrames(ctx, 500, func(i int) ([]*rtp.Packet, error) {
				pkts, err := c.encode(i)
				for _, p := range pkts {
					p.Timestamp = uint32(i * 3600)
				}
				return pkts, err
			}, func(p *rtp.Packet) error { return track.WriteRTP(p) }, t.Error)()

			got := readFrames(t, srv.rtsp, "/"+name, c, 40)
			if !c.key(got[0]) {
				t.Fatal("first frame read is not a key frame")
			}
			k := -1
			for i, w := range want {
				if bytes.Equal(w, got[0]) {
					k = i
				}
			}
			if k < 0 || k%clipGOP != 0 {
				t.Fatalf("first frame read is clip frame %d, want a key frame of the clip", k)
			}
			for j, f := range got {
				if w := want[(k+j)%len(want)]; !reflect.DeepEqual(f, w) {
					t.Fatalf("frame %d read (clip frame %d): %d bytes, differs from the %d sent", j, (k+j)%len(want), len(f), len(w))
				}
			}

			pctx, pcancel := context.WithTimeout(ctx, 8*time.Second)
			defer pcancel()
			if c.probe == "av1" {
				// ffmpeg 5.1 knows no AV1 RTP payload: it waits for a codec
				// to show up in the packets until killed.
				pctx, pcancel = context.WithTimeout(ctx, 3*time.Second)
				defer pcancel()
			}
			out, err := exec.CommandContext(pctx, needFFprobe(t), "-v", "warning", "-rtsp_transport", "tcp",
				"-show_entries", "stream=codec_name", "-of", "csv=p=0", "rtsp://"+srv.rtsp+"/"+name).CombinedOutput()
			switch {
			case c.probe == "av1":
				t.Logf("ffprobe, not checked (AV1 over RTSP needs an ffmpeg newer than 5.1): %v %q", err, out)
			case err != nil:
				t.Fatalf("ffprobe: %v: %s", err, out)
			case !strings.Contains(string(out), c.probe+"\n") && strings.TrimSpace(string(out)) != c.probe:
				t.Errorf("ffprobe lists %q, want %s", out, c.probe)
			}
		})
	}
}

// readFrames reads path over RTSP (TCP) with gortsplib and returns the
// first n frames depacketized, checking the description's format.
func readFrames(t *testing.T, addr, path string, c rtspVideoCase, n int) [][]byte {
	t.Helper()
	proto := gortsplib.ProtocolTCP
	cl := gortsplib.Client{Scheme: "rtsp", Host: addr, Protocol: &proto, ReadTimeout: 5 * time.Second}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	u, err := base.ParseURL("rtsp://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	desc, _, err := cl.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Medias) != 1 || len(desc.Medias[0].Formats) != 1 || !c.format(desc.Medias[0].Formats[0]) {
		t.Fatalf("description %+v, want one %s media", desc.Medias, c.name)
	}
	if err := cl.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]byte
	var decErr error
	dec := c.newDecoder()
	done := make(chan struct{})
	cl.OnPacketRTPAny(func(_ *description.Media, _ format.Format, p *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == n || decErr != nil {
			return
		}
		f, err := dec(p)
		switch {
		case err != nil:
			decErr = err
			close(done)
		case f != nil:
			got = append(got, bytes.Clone(f))
			if len(got) == n {
				close(done)
			}
		}
	})
	if _, err := cl.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	if decErr != nil || len(got) < n {
		t.Fatalf("read %d of %d frames: %v", len(got), n, decErr)
	}
	return got
}
