package media

import "time"

// Frame is one access unit (video) or packet (audio) rebuilt from RTP.
//
// For H264 and H265, NALUs holds the NAL units without start codes, for
// AV1 the OBUs of a temporal unit; the byte slices may share memory with
// the stream's ring and must not be modified. For VP8 and Opus, Payload
// holds the frame.
type Frame struct {
	Track    int  // index of the track in its stream
	Keyframe bool // a random access point: IDR/IRAP, VP8 key frame; every audio frame

	// RTPTimestamp is the publisher's timestamp; Time is the same
	// timestamp unwrapped to 64 bits, counted from the track's first
	// frame, in units of ClockRate: a monotonic media clock for muxers.
	RTPTimestamp uint32
	Time         int64
	ClockRate    uint32

	// Wall is the capture time that the publisher's RTCP sender reports
	// give this frame (RFC 3550 §6.4.1): comparable between the audio and
	// video of one publisher, for lip sync. Zero until the first report.
	Wall time.Time

	NALUs   [][]byte
	Payload []byte
}

// PTS is the frame's Time as a duration from the track's first frame.
func (f *Frame) PTS() time.Duration {
	if f.ClockRate == 0 {
		return 0
	}
	return time.Duration(f.Time * int64(time.Second) / int64(f.ClockRate))
}

// AnnexB returns the NAL units with four-byte start codes (ITU-T H.264
// Annex B), for consumers that want one byte stream.
func (f *Frame) AnnexB() []byte {
	n := 0
	for _, u := range f.NALUs {
		n += 4 + len(u)
	}
	out := make([]byte, 0, n)
	for _, u := range f.NALUs {
		out = append(out, 0, 0, 0, 1)
		out = append(out, u...)
	}
	return out
}

// VideoInfo is what a video track's parameter sets say about the picture.
type VideoInfo struct {
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Profile string `json:"profile,omitempty"` // e.g. "Constrained Baseline", "High", "Main 10", VP8 "0"
	Level   string `json:"level,omitempty"`   // e.g. "3.1"
}
