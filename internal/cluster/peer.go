package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PeerHeader carries a node-to-node pull's credential: "<node> <unix
// seconds> <hex HMAC-SHA256(secret, node \n stream \n seconds)>". The
// secret itself never goes on the wire, and a credential is good for one
// stream and a short while.
const PeerHeader = "Sluice-Cluster-Auth"

// peerSkew is how far a credential's time may be from the owner's clock.
const peerSkew = time.Minute

func peerMAC(secret, node, stream, ts string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(node + "\n" + stream + "\n" + ts))
	return hex.EncodeToString(m.Sum(nil))
}

// signPull returns the PeerHeader value for pulling stream.
func signPull(secret, node, stream string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return node + " " + ts + " " + peerMAC(secret, node, stream, ts)
}

// checkPull verifies a PeerHeader value for stream; it returns the
// pulling node's id.
func checkPull(secret, value, stream string, now time.Time) (string, error) {
	parts := strings.Fields(value)
	if len(parts) != 3 {
		return "", fmt.Errorf("%s: want 3 fields, got %d", PeerHeader, len(parts))
	}
	node, ts, mac := parts[0], parts[1], parts[2]
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%s: bad time %q", PeerHeader, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > peerSkew || d < -peerSkew {
		return "", fmt.Errorf("%s: time is %v off", PeerHeader, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(mac), []byte(peerMAC(secret, node, stream, ts))) {
		return "", fmt.Errorf("%s: signature does not match", PeerHeader)
	}
	return node, nil
}

// Peer reports whether r is another node of the cluster pulling stream
// over WHEP: such a request skips viewer auth and capacity, and is served
// from this node's hub only. A request with a bad credential is logged and
// treated as an ordinary viewer.
func (c *Cluster) Peer(r *http.Request, stream string) bool {
	v := r.Header.Get(PeerHeader)
	if v == "" {
		return false
	}
	node, err := checkPull(c.cfg.Secret, v, stream, time.Now())
	if err != nil {
		c.log.Warn("cluster pull refused", "stream", stream, "remote", r.RemoteAddr, "err", err)
		return false
	}
	c.log.Info("cluster pull", "stream", stream, "node", node, "remote", r.RemoteAddr)
	return true
}
