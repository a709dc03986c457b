package rtc

import (
	"errors"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// RTCPObserver watches a publisher PeerConnection for metrics: the tracks
// it receives and every RTCP packet it sends (receiver reports, NACKs,
// keyframe requests). Calls come from pion's goroutines, once per track and
// once per RTCP batch, never per RTP packet; they must not block.
type RTCPObserver interface {
	RemoteTrack(ssrc, clockRate uint32)
	SentRTCP(pkts []rtcp.Packet)
}

// observeFactory builds the observing interceptor. It is added to the
// registry first so that it wraps the transport directly and sees the RTCP
// that the other interceptors generate as well as what the session writes.
type observeFactory struct{ obs RTCPObserver }

func (f observeFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &observer{obs: f.obs}, nil
}

type observer struct {
	interceptor.NoOp
	obs RTCPObserver
}

func (o *observer) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		o.obs.SentRTCP(pkts)
		return w.Write(pkts, a)
	})
}

func (o *observer) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	o.obs.RemoteTrack(info.SSRC, info.ClockRate)
	return r
}

// FailureReason names a connection failure among the reasons a session's
// Close gets, for metrics: "connect_timeout", "ice_failed", or "" when the
// session did not end by a connection failure.
func FailureReason(err error) string {
	switch {
	case errors.Is(err, ErrConnectTimeout):
		return "connect_timeout"
	case errors.Is(err, ErrICEFailed):
		return "ice_failed"
	}
	return ""
}
