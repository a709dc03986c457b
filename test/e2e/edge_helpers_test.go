package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// startEdgeServer is startServer that also returns the *server.Server, for
// tests that look at its session count, and serves https:// when tweak sets
// a TLS certificate.
func startEdgeServer(t testing.TB, tweak func(*config.Config)) *node {
	t.Helper()
	return startNode(t, tweak, nodeOptions{})
}

// newEdgeServer starts the server; quiet discards its log (fuzzing, where
// every input is a logged refusal and the log would go to a *testing.F).
func newEdgeServer(t testing.TB, tweak func(*config.Config), quiet bool) *node {
	t.Helper()
	return startNode(t, tweak, nodeOptions{quiet: quiet})
}

// response is what send got back.
type response struct {
	status int
	header http.Header
	body   string
}

// send sends one request with the given headers (Content-Type among them)
// without keep-alive, through hc if not nil.
func send(t testing.TB, hc *http.Client, method, url string, header map[string]string, body string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// looseFeed sends the clip in a loop at real-time pace, with Opus beside
// it, until ctx ends. Unlike feed it ignores write errors: during an ICE
// restart the publisher has no selected candidate pair for a moment.
func looseFeed(ctx context.Context, pub *client.Publisher, clip [][][]byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		for i := 0; ; i++ {
			pts := time.Duration(i) * client.OpusFrameDuration
			_ = pub.WriteOpus(client.OpusTestPacket(uint16(i)), pts)
			if i%2 == 0 {
				_ = pub.WriteH264(clip[(i/2)%len(clip)], pts)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * client.OpusFrameDuration))):
			}
		}
	}()
	return done
}

// receiveAUs waits until n access units arrived on the viewer, or d passed,
// and returns how many did.
func receiveAUs(v *client.Viewer, n int, d time.Duration) int {
	deadline := time.After(d)
	for got := 0; ; {
		if got >= n {
			return got
		}
		select {
		case <-v.AccessUnits():
			got++
		case <-deadline:
			return got
		}
	}
}

// drain empties a viewer's queues.
func drain(v *client.Viewer) {
	for {
		select {
		case <-v.AccessUnits():
		case <-v.OpusPackets():
		default:
			return
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// into a temporary folder and returns the two PEM files and an HTTP client
// that trusts it.
func selfSigned(t testing.TB) (certFile, keyFile string, hc *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc = &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	return certFile, keyFile, hc
}

// closeAll closes clients, in parallel, when the test ends.
type closers struct {
	mu   sync.Mutex
	list []io.Closer
}

func (c *closers) add(x io.Closer) {
	c.mu.Lock()
	c.list = append(c.list, x)
	c.mu.Unlock()
}

func (c *closers) closeAll() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, x := range list {
		wg.Go(func() { _ = x.Close() })
	}
	wg.Wait()
}
