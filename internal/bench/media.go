package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/sluice-media/sluice/internal/client"
)

// Media sources.
const (
	SourceClip      = "clip"      // the committed testdata clip, padded to the bit rate
	SourceSynthetic = "synthetic" // generated SPS/PPS and slices of the right sizes
	SourceFile      = "file"      // an Annex-B file with access unit delimiters
)

// ClipFile is the committed clip, relative to the repository root.
const ClipFile = "testdata/h264_cbp_320x240_25fps_3s.h264"

// MediaConfig says what the publisher sends.
type MediaConfig struct {
	// Source is SourceClip, SourceSynthetic or SourceFile.
	Source string
	// File is the Annex-B file for SourceFile and SourceClip (the clip's
	// path; found from the working directory upward when empty).
	File string
	// Width and Height choose the synthetic SPS; for the clip they must be
	// 0 or 320×240, for a file 0 or the file's size.
	Width, Height int
	// FPS is the video frame rate: 25 when 0 (the clip's rate).
	FPS int
	// GOP is the synthetic keyframe interval in frames: FPS when 0.
	GOP int
	// VideoBitrate is the H264 bit rate to reach, in bit/s: 2.5 Mbit/s
	// when 0. Clip and file access units are padded to the mean size with
	// an SEI; synthetic ones are generated at that size (keyframes 4× a P
	// frame).
	VideoBitrate int
	// AudioBitrate sets the Opus packet size (50 packets/s): 32 kbit/s when
	// 0. Packets are one CELT silence frame plus padding.
	AudioBitrate int
}

// media is a prepared source: one loop of access units and what to offer.
type media struct {
	aus           [][][]byte
	fps           int
	padTo         int // bytes per access unit to pad to; 0 = stamp only
	fmtp          string
	width, height int
	desc          string
	opusSize      int
}

func (c MediaConfig) withDefaults() MediaConfig {
	if c.Source == "" {
		c.Source = SourceClip
	}
	if c.FPS == 0 {
		c.FPS = 25
	}
	if c.GOP == 0 {
		c.GOP = c.FPS
	}
	if c.VideoBitrate == 0 {
		c.VideoBitrate = 2_500_000
	}
	if c.AudioBitrate == 0 {
		c.AudioBitrate = 32_000
	}
	return c
}

func prepareMedia(c MediaConfig) (*media, error) {
	c = c.withDefaults()
	if c.FPS < 1 || c.FPS > 120 {
		return nil, fmt.Errorf("fps %d: want 1..120", c.FPS)
	}
	if c.VideoBitrate < 10_000 || c.VideoBitrate > 200_000_000 {
		return nil, fmt.Errorf("video bitrate %d: want 10k..200M", c.VideoBitrate)
	}
	if c.AudioBitrate < 2_800 || c.AudioBitrate > 510_000 {
		return nil, fmt.Errorf("audio bitrate %d: want 2.8k..510k", c.AudioBitrate)
	}
	m := &media{fps: c.FPS, opusSize: c.AudioBitrate / 8 / 50}
	avg := c.VideoBitrate / 8 / c.FPS
	switch c.Source {
	case SourceSynthetic:
		if c.Width == 0 && c.Height == 0 {
			c.Width, c.Height = 1280, 720
		}
		aus, err := synthGOP(c.Width, c.Height, c.FPS, c.GOP, avg-minStampSEI)
		if err != nil {
			return nil, err
		}
		m.aus, m.width, m.height = aus, c.Width, c.Height
		m.desc = fmt.Sprintf("synthetic H264 %dx%d (valid SPS/PPS and slice headers, filler instead of picture data), GOP %d", c.Width, c.Height, c.GOP)
	case SourceClip, SourceFile:
		path := c.File
		if c.Source == SourceClip && path == "" {
			var err error
			if path, err = findUpward(ClipFile); err != nil {
				return nil, err
			}
		}
		if path == "" {
			return nil, fmt.Errorf("source %s needs a file", c.Source)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		aus, err := client.ReadAccessUnits(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		m.aus, m.padTo = aus, avg
		m.width, m.height = spsSize(aus)
		if (c.Width != 0 || c.Height != 0) && (c.Width != m.width || c.Height != m.height) {
			return nil, fmt.Errorf("resolution %dx%d: %s is %dx%d; use -source synthetic for other sizes", c.Width, c.Height, path, m.width, m.height)
		}
		m.desc = fmt.Sprintf("%s (%dx%d, %d access units looped), each access unit padded with an SEI to the mean size", path, m.width, m.height, len(aus))
	default:
		return nil, fmt.Errorf("source %q: want %s, %s or %s", c.Source, SourceClip, SourceSynthetic, SourceFile)
	}
	m.fmtp = fmtpFor(m.aus)
	return m, nil
}

// findUpward looks for rel in the working directory and its parents, so
// that the tool and the tests find the clip from any package folder.
func findUpward(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 8 {
		p := dir + string(os.PathSeparator) + rel
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := dir[:max(strings.LastIndexByte(dir, os.PathSeparator), 0)]
		if parent == "" || parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("%s not found from the working directory upward; give -file", rel)
}

// firstSPS returns the first SPS NAL unit of the stream, or nil.
func firstSPS(aus [][][]byte) []byte {
	for _, au := range aus {
		for _, n := range au {
			if len(n) > 3 && n[0]&0x1f == 7 {
				return n
			}
		}
	}
	return nil
}

func spsSize(aus [][][]byte) (int, int) {
	var sps mch264.SPS
	if b := firstSPS(aus); b != nil && sps.Unmarshal(b) == nil {
		return sps.Width(), sps.Height()
	}
	return 0, 0
}

// fmtpFor returns the fmtp line to offer: the SPS's profile and level,
// constrained baseline written as browsers do (42e0xx).
func fmtpFor(aus [][][]byte) string {
	sps := firstSPS(aus)
	if sps == nil {
		return client.DefaultH264Fmtp
	}
	profile, constraints, level := sps[1], sps[2], sps[3]
	if profile == 66 && constraints&0x40 != 0 {
		constraints = 0xe0
	}
	return fmt.Sprintf("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=%02x%02x%02x", profile, constraints, level)
}

// opusPacket returns a 20 ms Opus packet of about size bytes: a code 3
// packet (RFC 6716 §3.2.5) with one CELT fullband silence frame and
// padding, which decoders skip. n is kept in the last two bytes when there
// is padding, as client.OpusTestPacket does.
func opusPacket(n uint16, size int) []byte {
	if size <= 7 {
		return client.OpusTestPacket(n)
	}
	// TOC, frame count byte, padding length bytes, 2-byte frame, padding.
	wire := func(pad int) int {
		lenBytes := 1
		for r := pad; r >= 255; r -= 254 {
			lenBytes++
		}
		return 2 + lenBytes + 2 + pad
	}
	pad := size - 5
	for pad > 0 && wire(pad) > size {
		pad--
	}
	p := make([]byte, 0, wire(pad))
	p = append(p, 0xfb, 0x41) // config 31, code 3; CBR, padding, 1 frame
	for r := pad; ; r -= 254 {
		if r < 255 {
			p = append(p, byte(r))
			break
		}
		p = append(p, 255) // 254 bytes of padding, and the next byte adds more
	}
	p = append(p, 0xff, 0xfe)
	for range pad {
		p = append(p, 0)
	}
	if pad >= 2 {
		p[len(p)-2], p[len(p)-1] = byte(n>>8), byte(n)
	}
	return p
}

// ParseBitrate reads a bit rate such as 2.5M, 800k or 64000.
func ParseBitrate(s string) (int, error) {
	mult := 1.0
	t := strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(t, "M"), strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("bit rate %q: want a positive number with an optional k or M suffix", s)
	}
	return int(f * mult), nil
}

// ParseResolution reads WIDTHxHEIGHT; "" gives 0, 0.
func ParseResolution(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("resolution %q: want WIDTHxHEIGHT, e.g. 1280x720", s)
	}
	return w, h, nil
}
