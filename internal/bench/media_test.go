package bench

import (
	"bytes"
	"testing"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/sluice-media/sluice/internal/client"
)

func TestSynthSPS(t *testing.T) {
	for _, tc := range []struct{ w, h, fps int }{
		{320, 240, 25}, {640, 360, 30}, {1280, 720, 30}, {1920, 1080, 30}, {3840, 2160, 30}, {642, 482, 25},
	} {
		nal := synthSPS(tc.w, tc.h, h264Level(tc.w, tc.h, tc.fps))
		var sps mch264.SPS
		if err := sps.Unmarshal(nal); err != nil {
			t.Fatalf("%dx%d: %v", tc.w, tc.h, err)
		}
		if sps.Width() != tc.w || sps.Height() != tc.h || sps.ProfileIdc != 66 {
			t.Errorf("%dx%d: SPS says %dx%d profile %d", tc.w, tc.h, sps.Width(), sps.Height(), sps.ProfileIdc)
		}
	}
}

func TestSynthGOP(t *testing.T) {
	const avg = 12_500
	aus, err := synthGOP(1280, 720, 25, 25, avg)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != 25 || !client.IsIDR(aus[0]) || client.IsIDR(aus[1]) {
		t.Fatalf("GOP: %d AUs, IDR %v %v", len(aus), client.IsIDR(aus[0]), client.IsIDR(aus[1]))
	}
	total := 0
	for _, au := range aus {
		for _, n := range au {
			total += len(n)
			if bytes.Contains(n, []byte{0, 0, 1}) || bytes.Contains(n, []byte{0, 0, 0}) {
				t.Fatalf("NAL unit type %d holds a start code", n[0]&0x1f)
			}
		}
	}
	if mean := total / len(aus); mean < avg*95/100 || mean > avg*105/100 {
		t.Errorf("mean access unit %d bytes, want about %d", mean, avg)
	}
	if _, err := synthGOP(1281, 720, 25, 25, avg); err == nil {
		t.Error("odd width accepted")
	}
}

func TestPrepareMedia(t *testing.T) {
	m, err := prepareMedia(MediaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if m.width != 320 || m.height != 240 || len(m.aus) != 75 || m.padTo != 2_500_000/8/25 {
		t.Errorf("clip: %dx%d, %d AUs, pad %d", m.width, m.height, len(m.aus), m.padTo)
	}
	if m.fmtp != client.DefaultH264Fmtp {
		t.Errorf("clip fmtp %q", m.fmtp)
	}
	if _, err := prepareMedia(MediaConfig{Width: 1280, Height: 720}); err == nil {
		t.Error("clip at 1280x720 accepted")
	}
	m, err = prepareMedia(MediaConfig{Source: SourceSynthetic, Width: 1920, Height: 1080, FPS: 30})
	if err != nil {
		t.Fatal(err)
	}
	if m.width != 1920 || m.fmtp != "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e028" {
		t.Errorf("synthetic: %d wide, fmtp %q", m.width, m.fmtp)
	}
	if _, err := prepareMedia(MediaConfig{Source: "camera"}); err == nil {
		t.Error("unknown source accepted")
	}
}

func TestStampRoundTrip(t *testing.T) {
	clip, err := prepareMedia(MediaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		n      uint64
		target int
		au     [][]byte
	}{
		{"IDR padded", 0, 12_500, clip.aus[0]},
		{"P padded", 1<<40 + 12345, 12_500, clip.aus[1]},
		{"small", 77, 0, clip.aus[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			au := stampAU(tc.au, tc.n, tc.target)
			if len(au) != len(tc.au)+1 {
				t.Fatalf("%d NAL units, want %d", len(au), len(tc.au)+1)
			}
			size := 0
			for _, n := range au {
				size += len(n)
				if bytes.Contains(n, []byte{0, 0, 1}) {
					t.Fatal("start code inside a NAL unit")
				}
			}
			if tc.target > 0 && (size < tc.target-2 || size > tc.target) {
				t.Errorf("AU is %d bytes, want about %d", size, tc.target)
			}
			// Packetize as the publisher does and find the stamp in exactly
			// one packet.
			var pl codecs.H264Payloader
			found := 0
			for _, n := range au {
				for _, p := range pl.Payload(1200, n) {
					if got, ok := findStamp(p); ok {
						found++
						if got != tc.n {
							t.Errorf("stamp %d, want %d", got, tc.n)
						}
					}
				}
			}
			if found != 1 {
				t.Errorf("stamp found in %d packets", found)
			}
		})
	}
	// An SEI aggregated with SPS and PPS in a STAP-A, as MediaMTX's
	// packetizer does with small NAL units.
	sei := stampSEI(42, 0)
	stap := []byte{24}
	for _, n := range [][]byte{{0x67, 1, 2, 3}, {0x68, 4}, sei} {
		stap = append(stap, byte(len(n)>>8), byte(len(n)))
		stap = append(stap, n...)
	}
	if n, ok := findStamp(stap); !ok || n != 42 {
		t.Errorf("STAP-A: %d %v", n, ok)
	}
	for _, bad := range [][]byte{nil, {6}, {6, 5, 30}, {28, 0x06, 5}, {24, 0, 9, 6}, client.OpusTestPacket(1)} {
		if _, ok := findStamp(bad); ok {
			t.Errorf("stamp found in %x", bad)
		}
	}
}

func TestOpusPacket(t *testing.T) {
	for _, size := range []int{7, 8, 80, 255, 258, 400, 1275} {
		p := opusPacket(513, size)
		if len(p) < size-1 || len(p) > size {
			t.Errorf("size %d: got %d bytes", size, len(p))
		}
		if size <= 7 {
			continue
		}
		// Decode the padding length (RFC 6716 §3.2.5) and check that the
		// frame is the two-byte silence frame.
		pad, i := 0, 2
		for ; p[i] == 255; i++ {
			pad += 254
		}
		pad += int(p[i])
		i++
		if frame := len(p) - i - pad; frame != 2 || p[i] != 0xff || p[i+1] != 0xfe {
			t.Errorf("size %d: frame of %d bytes at %d", size, frame, i)
		}
	}
}

func TestKeyframeWatch(t *testing.T) {
	clip, err := prepareMedia(MediaConfig{})
	if err != nil {
		t.Fatal(err)
	}
	packetize := func(aus [][][]byte) []*rtp.Packet {
		var pl codecs.H264Payloader
		var out []*rtp.Packet
		seq := uint16(65530)
		for i, au := range aus {
			var payloads [][]byte
			for _, n := range au {
				payloads = append(payloads, pl.Payload(1200, n)...)
			}
			for k, p := range payloads {
				out = append(out, &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(i * 3600), Marker: k == len(payloads)-1}, Payload: p})
				seq++
			}
		}
		return out
	}
	stamped := func(from, to int) [][][]byte {
		var aus [][][]byte
		for i := from; i < to; i++ {
			aus = append(aus, stampAU(clip.aus[i%len(clip.aus)], uint64(i), 12_500))
		}
		return aus
	}
	// Joining at a keyframe: complete at its last packet.
	pkts := packetize(stamped(0, 3))
	var k keyframeWatch
	done := -1
	for i, p := range pkts {
		if k.push(p) && done < 0 {
			done = i
		}
	}
	if done < 0 || !pkts[done].Marker || pkts[done].Timestamp != 0 {
		t.Fatalf("first keyframe completed at packet %d", done)
	}
	// Joining mid-GOP: the next keyframe (AU 25) completes; a loss inside
	// that keyframe pushes it to the one after (AU 50).
	for _, drop := range []bool{false, true} {
		pkts := packetize(stamped(10, 60))
		var k keyframeWatch
		done := uint32(0)
		dropped := false
		for _, p := range pkts {
			if drop && !dropped && p.Timestamp == 15*3600 && !p.Marker && p.Payload[0]&0x1f == 28 {
				dropped = true
				continue
			}
			if k.push(p) {
				done = p.Timestamp
				break
			}
		}
		want := uint32(15 * 3600) // AU 25 is the 16th sent
		if drop {
			want = 40 * 3600
		}
		if done != want {
			t.Errorf("drop=%v: keyframe at timestamp %d, want %d", drop, done, want)
		}
	}
}

func TestSeqCounterWrap(t *testing.T) {
	var c seqCounter
	for _, s := range []uint16{65534, 65535, 1, 2, 1, 3} { // 0 lost, 1 repeated late
		c.push(s)
	}
	if h := c.highest.Load(); h != 65536+3 {
		t.Errorf("highest %d", h)
	}
	a := counters{videoOn: true, videoHigh: 65534, videoRecv: 1}
	b := counters{videoOn: true, videoHigh: c.highest.Load(), videoRecv: c.received.Load()}
	if e, l := lost(a, b); e != 5 || l != 0 {
		t.Errorf("expected %d lost %d, want 5 and 0 (the late duplicate fills the gap)", e, l)
	}
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]int{"2.5M": 2_500_000, "800k": 800_000, "64000": 64_000} {
		if got, err := ParseBitrate(in); err != nil || got != want {
			t.Errorf("ParseBitrate(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "fast", "-1M", "0"} {
		if _, err := ParseBitrate(bad); err == nil {
			t.Errorf("ParseBitrate(%q) accepted", bad)
		}
	}
	if w, h, err := ParseResolution("1280x720"); err != nil || w != 1280 || h != 720 {
		t.Errorf("ParseResolution: %d %d %v", w, h, err)
	}
	if _, _, err := ParseResolution("720p"); err == nil {
		t.Error("720p accepted")
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.N != 100 || p.P50 != 50 || p.P99 != 99 || p.Max != 100 {
		t.Errorf("%+v", p)
	}
	if p := percentiles(d[:1]); p.P50 != 100 || p.P99 != 100 {
		t.Errorf("one sample: %+v", p)
	}
	if p := percentiles(nil); p.N != 0 || p.String() != "n/a" {
		t.Errorf("none: %+v", p)
	}
}
