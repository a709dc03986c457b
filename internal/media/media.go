// Package media holds the codec-neutral types every part of sluice shares:
// what a track carries and how its RTP clock runs.
package media

import "strings"

// Kind says whether a track carries audio or video.
type Kind uint8

// Track kinds.
const (
	KindAudio Kind = iota + 1
	KindVideo
)

func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	}
	return "unknown"
}

// Codec describes an RTP payload format as SDP negotiates it.
type Codec struct {
	MimeType  string // "video/H264", "audio/opus"
	ClockRate uint32
	Channels  uint16
	Fmtp      string // a=fmtp parameters, e.g. "packetization-mode=1;profile-level-id=42e01f"
}

// Kind derives the track kind from the MIME type.
func (c Codec) Kind() Kind {
	switch {
	case strings.HasPrefix(strings.ToLower(c.MimeType), "audio/"):
		return KindAudio
	case strings.HasPrefix(strings.ToLower(c.MimeType), "video/"):
		return KindVideo
	}
	return 0
}

// Name is the encoding name without the kind, e.g. "H264".
func (c Codec) Name() string {
	if i := strings.IndexByte(c.MimeType, '/'); i >= 0 {
		return c.MimeType[i+1:]
	}
	return c.MimeType
}

// String is the codec as a person reads it in logs and errors.
func (c Codec) String() string {
	s := c.Name()
	if c.Fmtp != "" {
		s += " (" + c.Fmtp + ")"
	}
	return s
}
