package rtc

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// headerFactory builds the innermost interceptor of publishers'
// connections. pion's report and TWCC interceptors ask each packet's
// attributes for its RTP header; when no one has parsed it, each packet
// costs a new attribute map, a new header and its extension list. This
// interceptor gives every received stream one map and one header, parsed
// again for each packet, so reading a publisher's media allocates nothing.
//
// The attribute key of the header is pion's own, unexported one, learned
// once by asking pion to store a header (headerKey). If a pion version
// stores it otherwise, headerKey is nil and this interceptor does nothing.
type headerFactory struct{}

func (headerFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &headerReuse{}, nil
}

type headerReuse struct{ interceptor.NoOp }

// BindRemoteStream: a stream's reads come from one goroutine at a time
// (pion's probing of an unknown SSRC, then the track's reader), and the
// attributes are consumed by the interceptors above during the read.
func (*headerReuse) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if headerKey == nil {
		return r
	}
	h := &rtp.Header{}
	attrs := interceptor.Attributes{}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil || a != nil {
			return n, a, err
		}
		clear(attrs)
		if _, perr := h.Unmarshal(b[:n]); perr == nil {
			attrs.Set(headerKey, h)
		}
		return n, attrs, nil
	})
}

// headerKey is the attribute key under which pion keeps a parsed RTP
// header, or nil if it cannot be learned.
var headerKey = func() any {
	probe := interceptor.Attributes{}
	if _, err := probe.GetRTPHeader([]byte{0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}); err != nil || len(probe) != 1 {
		return nil
	}
	for k := range probe {
		h := &rtp.Header{}
		if got, err := (interceptor.Attributes{k: h}).GetRTPHeader(nil); err == nil && got == h {
			return k
		}
	}
	return nil
}()
