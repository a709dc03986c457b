package rtc

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// BenchmarkTWCCHeaderExtension is what congestion feedback costs a
// viewer of a simulcast stream per packet sent: pion's interceptor that
// puts a transport-wide sequence number on it (NewViewerPC with bwe).
// Viewers of streams without simulcast do not pay it.
func BenchmarkTWCCHeaderExtension(b *testing.B) {
	f, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		b.Fatal(err)
	}
	in, err := f.NewInterceptor("")
	if err != nil {
		b.Fatal(err)
	}
	w := in.BindLocalStream(&interceptor.StreamInfo{
		SSRC: 1, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 3}},
	}, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { return 0, nil }))
	payload := make([]byte, 1200)
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}
	b.ReportAllocs()
	for i := range b.N {
		h.SequenceNumber = uint16(i)
		h.Extension, h.Extensions = false, h.Extensions[:0]
		if _, err := w.Write(&h, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
}
