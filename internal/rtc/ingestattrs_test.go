package rtc

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// TestHeaderReuse: pion's report and TWCC interceptors, above the header
// interceptor, get every packet's header without allocating.
func TestHeaderReuse(t *testing.T) {
	if headerKey == nil {
		t.Fatal("pion's attribute key of RTP headers was not learned: publishers' reads allocate again")
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 5, Extension: true, ExtensionProfile: 0xbede}, Payload: make([]byte, 1000)}
	if err := pkt.SetExtension(3, []byte{0, 1}); err != nil {
		t.Fatal(err)
	}
	base := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		pkt.SequenceNumber++
		n, err := pkt.MarshalTo(b)
		return n, a, err
	})
	info := &interceptor.StreamInfo{SSRC: 5, ClockRate: 90000,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", ID: 3}}}
	var chain interceptor.RTPReader
	hr, _ := headerFactory{}.NewInterceptor("")
	chain = hr.BindRemoteStream(info, base)
	rf, err := report.NewReceiverInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := rf.NewInterceptor("")
	chain = rr.BindRemoteStream(info, chain)
	tf, err := twcc.NewSenderInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	tw, _ := tf.NewInterceptor("")
	chain = tw.BindRemoteStream(info, chain)
	// Their loops (and the TWCC interceptor's packet channel) start with
	// an RTCP writer.
	nop := interceptor.RTCPWriterFunc(func([]rtcp.Packet, interceptor.Attributes) (int, error) { return 0, nil })
	rr.BindRTCPWriter(nop)
	tw.BindRTCPWriter(nop)
	defer rr.Close()
	defer tw.Close()

	buf := make([]byte, 1500)
	n, a, err := chain.Read(buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.GetRTPHeader(buf[:n])
	if err != nil || h.SequenceNumber != pkt.SequenceNumber || h.SSRC != 5 || len(h.GetExtension(3)) != 2 {
		t.Fatalf("header %+v, %v; want sequence number %d", h, err, pkt.SequenceNumber)
	}
	if allocs := testing.AllocsPerRun(200, func() {
		if _, _, err := chain.Read(buf, nil); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per packet read through the report and TWCC interceptors, want 0", allocs)
	}
}
