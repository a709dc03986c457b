package rtc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Errors of offer/answer and connection life; the HTTP edge maps them.
var (
	ErrBadOffer       = errors.New("bad SDP offer")
	ErrConnectTimeout = errors.New("connect timeout")
	ErrICEFailed      = errors.New("ICE/DTLS connection failed")
	ErrClosed         = errors.New("peer connection closed")
)

// ParseOffer checks that body is an SDP offer with at least one audio or
// video section; the error says what is wrong with it.
func ParseOffer(body string) (*sdp.SessionDescription, error) {
	if strings.TrimSpace(body) == "" {
		return nil, fmt.Errorf("%w: empty body", ErrBadOffer)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	n := 0
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media == "audio" || m.MediaName.Media == "video" {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no audio or video section", ErrBadOffer)
	}
	if _, ok := d.Attribute("ice-ufrag"); !ok && !hasMediaAttr(&d, "ice-ufrag") {
		return nil, fmt.Errorf("%w: no ice-ufrag", ErrBadOffer)
	}
	if _, ok := d.Attribute("ice-pwd"); !ok && !hasMediaAttr(&d, "ice-pwd") {
		return nil, fmt.Errorf("%w: no ice-pwd", ErrBadOffer)
	}
	if err := checkICEAttrs(d.Attributes); err != nil {
		return nil, fmt.Errorf("%w: session: %v", ErrBadOffer, err)
	}
	for i, m := range d.MediaDescriptions {
		if err := checkICEAttrs(m.Attributes); err != nil {
			return nil, fmt.Errorf("%w: media section %d: %v", ErrBadOffer, i, err)
		}
	}
	if _, ok := d.Attribute("fingerprint"); !ok && !hasMediaAttr(&d, "fingerprint") {
		return nil, fmt.Errorf("%w: no DTLS fingerprint", ErrBadOffer)
	}
	return &d, nil
}

// checkICEAttrs checks the ice-ufrag and ice-pwd attributes among attrs.
func checkICEAttrs(attrs []sdp.Attribute) error {
	for _, a := range attrs {
		switch a.Key {
		case "ice-ufrag":
			if err := CheckICEChars("ice-ufrag", a.Value, 4); err != nil {
				return err
			}
		case "ice-pwd":
			if err := CheckICEChars("ice-pwd", a.Value, 22); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckICEChars checks an ICE username fragment or password (RFC 8839
// §5.4): min to 256 characters of the ice-char set (ALPHA / DIGIT / "+" /
// "/"); the error says which rule v breaks.
func CheckICEChars(name, v string, min int) error {
	if len(v) < min || len(v) > 256 {
		return fmt.Errorf("%s has %d characters, RFC 8839 allows %d to 256", name, len(v), min)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return fmt.Errorf("%s has %q at %d, outside the ice-char set (RFC 8839 §5.4)", name, c, i)
		}
	}
	return nil
}

func hasMediaAttr(d *sdp.SessionDescription, key string) bool {
	for _, m := range d.MediaDescriptions {
		if _, ok := m.Attribute(key); ok {
			return true
		}
	}
	return false
}

// SetOffer applies a remote offer; pion's complaints become ErrBadOffer.
func SetOffer(pc *webrtc.PeerConnection, offer string) error {
	err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	return nil
}

// Answer creates and applies the local answer and waits until ICE gathering
// is complete, so the answer carries every candidate and clients need no
// trickle (RFC 9725 §4.3.1).
func Answer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("ICE gathering: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// Watch follows a PeerConnection's state: up runs once when it connects;
// down runs once, with the reason, when it fails, closes or does not connect
// within connectTimeout. Both run on goroutines of pion or of a timer.
func Watch(pc *webrtc.PeerConnection, connectTimeout time.Duration, up func(), down func(error)) {
	connected := make(chan struct{})
	var once sync.Once
	timer := time.AfterFunc(connectTimeout, func() {
		select {
		case <-connected:
		default:
			down(ErrConnectTimeout)
		}
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() {
				close(connected)
				timer.Stop()
				up()
			})
		case webrtc.PeerConnectionStateFailed:
			timer.Stop()
			down(ErrICEFailed)
		case webrtc.PeerConnectionStateClosed:
			timer.Stop()
			down(ErrClosed)
		}
	})
}

// NewID returns a random session id with 130 bits of entropy, safe in URLs.
func NewID() string { return strings.ToLower(rand.Text()) }
