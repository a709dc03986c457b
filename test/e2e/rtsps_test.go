package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// TestRTSPSRead: sluice serves RTSPS (rtsp.tls_listen with a certificate
// made here); a WHIP publisher's H264 is read over it by gortsplib's
// client, which verifies the certificate and sets up the video alone (a
// partial SETUP, which once crashed the reader); a client that does not trust
// it is refused at the handshake.
func TestRTSPSRead(t *testing.T) {
	certFile, keyFile, hc := selfSigned(t)
	pool := hc.Transport.(*http.Transport).TLSClientConfig.RootCAs
	n := startNode(t, func(c *config.Config) {
		c.RTSP.TLSListen, c.RTSP.TLSCert, c.RTSP.TLSKey = "127.0.0.1:0", certFile, keyFile
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, n.base+"/whip/s", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	go f.run(ctx)
	defer func() { cancel(); <-f.done }()
	<-f.sentAU(5)

	u, err := base.ParseURL("rtsps://" + n.RTSPSAddr().String() + "/s")
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	untrusted := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp,
		TLSConfig: &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}}
	if err := untrusted.Start(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := untrusted.Describe(u); err == nil {
		t.Error("a client that does not trust the certificate got a DESCRIBE answer")
	}
	untrusted.Close()

	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp,
		TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE over RTSPS: %v", err)
	}
	var h264 *format.H264
	medi := desc.FindFormat(&h264)
	if medi == nil {
		t.Fatalf("no H264 in the description: %+v", desc.Medias)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	got := make(chan *rtp.Packet, 100)
	c.OnPacketRTP(medi, h264, func(p *rtp.Packet) {
		select {
		case got <- p:
		default:
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		select {
		case p := <-got:
			if len(p.Payload) == 0 {
				t.Fatal("empty H264 packet")
			}
		case <-ctx.Done():
			t.Fatalf("got %d H264 packets over RTSPS, want 50", i)
		}
	}
}
