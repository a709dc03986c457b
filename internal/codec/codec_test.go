package codec

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluice-media/sluice/internal/media"
)

var keyframeCases = []struct {
	name    string
	detect  KeyframeFunc
	payload []byte
	want    bool
}{
	{"h264 idr", H264Keyframe, []byte{0x65, 0x88}, true},
	{"h264 p slice", H264Keyframe, []byte{0x41, 0x9a}, false},
	{"h264 sps alone", H264Keyframe, []byte{0x67, 0x42}, false},
	{"h264 stap-a sps pps idr", H264Keyframe, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88}, true},
	{"h264 stap-a sps pps", H264Keyframe, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, false},
	{"h264 stap-a truncated", H264Keyframe, []byte{0x78, 0, 9, 0x65}, false},
	{"h264 fu-a idr start", H264Keyframe, []byte{0x7c, 0x85, 0x88}, true},
	{"h264 fu-a idr middle", H264Keyframe, []byte{0x7c, 0x05, 0x88}, false},
	{"h264 fu-a p start", H264Keyframe, []byte{0x7c, 0x81, 0x9a}, false},
	{"h264 empty", H264Keyframe, nil, false},
	{"h265 idr_w_radl", H265Keyframe, []byte{19 << 1, 1, 0xaf}, true},
	{"h265 cra", H265Keyframe, []byte{21 << 1, 1, 0xaf}, true},
	{"h265 trail_r", H265Keyframe, []byte{1 << 1, 1, 0xaf}, false},
	{"h265 ap vps sps pps idr", H265Keyframe, []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 2, 33 << 1, 1, 0, 2, 34 << 1, 1, 0, 3, 19 << 1, 1, 0xaf}, true},
	{"h265 ap vps only", H265Keyframe, []byte{48 << 1, 1, 0, 2, 32 << 1, 1}, false},
	{"h265 fu idr start", H265Keyframe, []byte{49 << 1, 1, 0x80 | 19, 0xaf}, true},
	{"h265 fu idr middle", H265Keyframe, []byte{49 << 1, 1, 19, 0xaf}, false},
	{"h265 short", H265Keyframe, []byte{19 << 1}, false},
	{"vp8 key no ext", VP8Keyframe, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, true},
	{"vp8 inter no ext", VP8Keyframe, []byte{0x10, 0x01}, false},
	{"vp8 key continuation", VP8Keyframe, []byte{0x00, 0x00}, false},
	{"vp8 key pid 15-bit", VP8Keyframe, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
	{"vp8 key pid 7-bit tl0 tid", VP8Keyframe, []byte{0x90, 0xe0, 0x12, 0x01, 0x40, 0x00}, true},
	{"vp8 truncated ext", VP8Keyframe, []byte{0x90, 0x80}, false},
	{"vp8 empty", VP8Keyframe, nil, false},
	{"vp9 key", VP9Keyframe, []byte{0x0c, 0x82, 0x49, 0x83}, true},
	{"vp9 inter", VP9Keyframe, []byte{0x4c, 0x86, 0x00}, false},
	{"vp9 not predicted, not a key frame", VP9Keyframe, []byte{0x0c, 0x86}, false},
	{"vp9 key middle packet", VP9Keyframe, []byte{0x04, 0x82}, false},
	{"vp9 key pid 15-bit", VP9Keyframe, []byte{0x8c, 0x92, 0x34, 0x82}, true},
	{"vp9 key pid 7-bit", VP9Keyframe, []byte{0x8c, 0x12, 0x82}, true},
	{"vp9 layers sid 0", VP9Keyframe, []byte{0x2c, 0x00, 0x05, 0x82}, true},
	{"vp9 layers sid 1", VP9Keyframe, []byte{0x2c, 0x02, 0x05, 0x82}, false},
	{"vp9 flexible layers sid 0", VP9Keyframe, []byte{0x3c, 0x00, 0x82}, true},
	{"vp9 scalability structure", VP9Keyframe, []byte{0x0e, 0x18, 0x01, 0x40, 0x00, 0xf0, 0x01, 0x04, 0x01, 0x82}, true},
	{"vp9 scalability structure truncated", VP9Keyframe, []byte{0x0e, 0x18, 0x01, 0x40}, false},
	{"vp9 show existing frame", VP9Keyframe, []byte{0x0c, 0x88}, false},
	{"vp9 profile 3 key", VP9Keyframe, []byte{0x0c, 0xb0}, true},
	{"vp9 profile 3 inter", VP9Keyframe, []byte{0x0c, 0xb2}, false},
	{"vp9 bad frame marker", VP9Keyframe, []byte{0x0c, 0x02}, false},
	{"vp9 truncated", VP9Keyframe, []byte{0x8c}, false},
	{"vp9 empty", VP9Keyframe, nil, false},
	{"av1 new coded video sequence", AV1Keyframe, []byte{0x18, 0x0a, 0x0b, 0x00}, true},
	{"av1 sequence header, one element", AV1Keyframe, []byte{0x10, 0x0a, 0x0b, 0x00}, true},
	{"av1 sequence header then frame", AV1Keyframe, []byte{0x20, 0x02, 0x08, 0x00, 0x30, 0x10}, true},
	{"av1 lengths: delimiter then sequence header", AV1Keyframe, []byte{0x00, 0x01, 0x12, 0x02, 0x08, 0x00}, true},
	{"av1 frame only", AV1Keyframe, []byte{0x10, 0x32, 0x00}, false},
	{"av1 continuation that looks like one", AV1Keyframe, []byte{0x90, 0x08, 0x00}, false},
	{"av1 continuation then sequence header", AV1Keyframe, []byte{0xa0, 0x01, 0x30, 0x08, 0x00}, true},
	{"av1 length past the end", AV1Keyframe, []byte{0x00, 0x05, 0x08}, false},
	{"av1 unterminated length", AV1Keyframe, []byte{0x00, 0x80}, false},
	{"av1 huge length", AV1Keyframe, []byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x08}, false},
	{"av1 short", AV1Keyframe, []byte{0x10}, false},
}

func TestKeyframe(t *testing.T) {
	for _, c := range keyframeCases {
		if got := c.detect(c.payload); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestKeyframeDetector(t *testing.T) {
	for mime, want := range map[string]bool{"video/H264": true, "video/h265": true, "video/VP8": true, "audio/opus": false, "audio/PCMU": false, "video/VP9": true, "video/AV1": true} {
		if got := KeyframeDetector(media.Codec{MimeType: mime}) != nil; got != want {
			t.Errorf("%s: detector present = %v, want %v", mime, got, want)
		}
	}
}

// FuzzKeyframe checks that no payload from the network makes a detector
// panic or read out of bounds; the table cases are the seeds.
func FuzzKeyframe(f *testing.F) {
	for _, c := range keyframeCases {
		f.Add(c.payload)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		H264Keyframe(p)
		H265Keyframe(p)
		VP8Keyframe(p)
		VP9Keyframe(p)
		AV1Keyframe(p)
	})
}

// FuzzVP9Keyframe and FuzzAV1Keyframe check that a payload found a
// keyframe stays one with anything appended (the detectors look only at
// the packet's start), and never panic.
func FuzzVP9Keyframe(f *testing.F) {
	for _, c := range keyframeCases {
		if strings.HasPrefix(c.name, "vp9") {
			f.Add(c.payload)
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if VP9Keyframe(p) && !VP9Keyframe(append(slices.Clip(p), 0xff, 0)) {
			t.Errorf("%x is a keyframe, not with bytes appended", p)
		}
	})
}

func FuzzAV1Keyframe(f *testing.F) {
	for _, c := range keyframeCases {
		if strings.HasPrefix(c.name, "av1") {
			f.Add(c.payload)
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		AV1Keyframe(p)
	})
}

func BenchmarkH264Keyframe(b *testing.B) {
	p := []byte{0x7c, 0x81, 0x9a, 0, 0, 0, 0, 0}
	for b.Loop() {
		H264Keyframe(p)
	}
}
