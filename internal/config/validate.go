package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/record"
	"github.com/sluice-media/sluice/internal/webhook"
)

// Bounds checked by Validate. They are part of the documented interface
// (sluice.yml, -h); change them together.
const (
	maxBodyBytesLimit = 16 << 20
	minRingPackets    = 256
	maxRingPackets    = 1 << 20
)

// fieldError is one invalid setting, named by its yaml path (with list
// indexes, e.g. "webrtc.listen_ips[1]").
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

// Validate checks every setting and reports all invalid ones, joined with
// errors.Join. Each error names the setting by its yaml path and says what is
// allowed, e.g. "webrtc.udp_port: 70000 is out of range (allowed 0..65535)".
func (c Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, p)
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// problems lists the invalid settings of c in declaration order.
func (c Config) problems() []*fieldError {
	var v validator

	v.hostPort("http.listen", c.HTTP.Listen)
	v.corsOrigin("http.cors_origin", c.HTTP.CORSOrigin)
	v.intRange("http.max_body_bytes", c.HTTP.MaxBodyBytes, 1, maxBodyBytesLimit, " (16 MiB)")
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		v.add("http.tls_cert", "tls_cert and tls_key must be set together (allowed: both empty for HTTP, both PEM file paths for HTTPS)")
	}
	v.durRange("http.read_header_timeout", c.HTTP.ReadHeaderTimeout, time.Second, 5*time.Minute)
	v.durRange("http.read_timeout", c.HTTP.ReadTimeout, time.Second, 5*time.Minute)
	v.durRange("http.idle_timeout", c.HTTP.IdleTimeout, time.Second, time.Hour)
	for i, s := range c.HTTP.ICEServers {
		p := fmt.Sprintf("http.ice_servers[%d]", i)
		v.iceServer(p, ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential + s.TURNSecret})
		if s.TURNSecret != "" && s.Credential != "" {
			v.add(p, "credential and turn_secret exclude each other (allowed: a static credential, or a turn_secret to generate time-limited ones)")
		}
		if s.TURNTTL < 0 || s.TURNTTL > 7*24*time.Hour {
			v.add(p+".turn_ttl", "%s is out of range (allowed 0s..168h; 0 means 24h)", shortDuration(s.TURNTTL))
		}
	}

	v.prefixes("http.trusted_proxies", c.HTTP.TrustedProxies)

	v.intRange("webrtc.udp_port", int64(c.WebRTC.UDPPort), 0, 65535, "")
	v.intRange("webrtc.tcp_port", int64(c.WebRTC.TCPPort), 0, 65535, "")
	v.ips("webrtc.listen_ips", c.WebRTC.ListenIPs, false)
	v.ips("webrtc.nat_1to1_ips", c.WebRTC.NAT1To1IPs, true)
	for i, s := range c.WebRTC.ICEServers {
		v.iceServer(fmt.Sprintf("webrtc.ice_servers[%d]", i), s)
	}
	v.durRange("webrtc.connect_timeout", c.WebRTC.ConnectTimeout, time.Second, 5*time.Minute)
	v.durRange("webrtc.consent_timeout", c.WebRTC.ConsentTimeout, 3*time.Second, 5*time.Minute)
	v.videoCodecs("webrtc.video_codecs", c.WebRTC.VideoCodecs)

	if n := c.Stream.RingPackets; n < minRingPackets || n > maxRingPackets || n&(n-1) != 0 {
		v.add("stream.ring_packets", "%d is not allowed (allowed: a power of two in %d..%d)", n, minRingPackets, maxRingPackets)
	}
	v.durRange("stream.pli_min_interval", c.Stream.PLIMinInterval, 100*time.Millisecond, time.Minute)
	v.durRange("stream.ready_timeout", c.Stream.ReadyTimeout, 0, time.Minute)
	v.durRange("stream.reconnect_grace", c.Stream.ReconnectGrace, 0, 5*time.Minute)
	v.intRange("stream.reorder_packets", int64(c.Stream.ReorderPackets), 1, 4096, "")
	v.durRange("stream.reorder_delay", c.Stream.ReorderDelay, 10*time.Millisecond, time.Second)
	if d := c.Stream.PLIInterval; d != 0 && (d < time.Second || d > time.Hour) {
		v.add("stream.pli_interval", "%s is out of range (allowed 0s for off, or 1s..1h)", shortDuration(d))
	}
	v.durRange("stream.wait_for_publisher", c.Stream.WaitForPublisher, 0, time.Minute)

	v.atLeast("limits.max_sessions", c.Limits.MaxSessions, 1)
	v.atLeast("limits.max_viewers_per_stream", c.Limits.MaxViewersPerStream, 1)
	v.atLeast("limits.max_sessions_per_ip", c.Limits.MaxSessionsPerIP, 1)
	v.prefixes("limits.per_ip_exempt", c.Limits.PerIPExempt)

	v.durRange("hls.segment_duration", c.HLS.SegmentDuration, 200*time.Millisecond, 30*time.Second)
	v.durRange("hls.part_duration", c.HLS.PartDuration, 20*time.Millisecond, max(c.HLS.SegmentDuration, 20*time.Millisecond))
	v.intRange("hls.segment_count", int64(c.HLS.SegmentCount), 7, 100, "; LL-HLS needs at least 7")
	v.durRange("hls.close_after", c.HLS.CloseAfter, 5*time.Second, 24*time.Hour)
	v.rtsp(c.RTSP, c.HTTP.Listen)
	v.sources(c.Sources)
	v.durRange("playback.max_duration", c.Playback.MaxDuration, time.Second, 24*time.Hour)
	for i, r := range c.Record.Rules {
		v.recordRule(fmt.Sprintf("record.rules[%d]", i), r)
	}
	if b := c.Transcode.AACBitrate; b != 0 {
		v.intRange("transcode.aac_bitrate", int64(b), 16000, 320000, ", or 0 for 64000 per channel)")
	}
	if b := c.Transcode.OpusBitrate; b != 0 {
		v.intRange("transcode.opus_bitrate", int64(b), 6000, 256000, ", or 0 for 64000 per channel)")
	}
	v.durRange("transcode.idle_close", c.Transcode.IdleClose, 0, time.Hour)

	for i, h := range c.Events.Webhooks {
		v.webhook(fmt.Sprintf("events.webhooks[%d]", i), h)
	}

	if c.Admin.Listen != "" {
		v.hostPort("admin.listen", c.Admin.Listen)
		if c.Admin.Listen == c.HTTP.Listen {
			v.add("admin.listen", "%q is http.listen's address (allowed: another host:port, or empty for no admin listener)", c.Admin.Listen)
		}
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	v.cluster(c.Cluster, c.HTTP.Listen)
	v.rtmp(c.RTMP)
	v.srt(c.SRT)
	for i, r := range c.Forward {
		if err := r.Check(); err != nil {
			v.add(fmt.Sprintf("forward[%d]", i), "%v", err)
		}
	}
	return v.errs
}

// validator collects fieldErrors.
type validator struct {
	errs []*fieldError
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &fieldError{path: path, msg: fmt.Sprintf(format, args...)})
}

func (v *validator) intRange(path string, n, lo, hi int64, note string) {
	if n < lo || n > hi {
		v.add(path, "%d is out of range (allowed %d..%d%s)", n, lo, hi, note)
	}
}

func (v *validator) atLeast(path string, n, lo int) {
	if n < lo {
		v.add(path, "%d is out of range (allowed %d or more)", n, lo)
	}
}

func (v *validator) durRange(path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.add(path, "%s is out of range (allowed %s..%s)", shortDuration(d), shortDuration(lo), shortDuration(hi))
	}
}

func (v *validator) oneOf(path, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.add(path, "%q is not allowed (allowed: %s)", s, strings.Join(allowed, ", "))
}

// hostPort accepts what net.Listen("tcp", s) accepts with a numeric port:
// "127.0.0.1:8080", ":8080" (all interfaces), "[::1]:8080", "localhost:0".
func (v *validator) hostPort(path, s string) {
	const allowed = "allowed: host:port such as 127.0.0.1:8080, :8080 or [::1]:8080"
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(path, "%q is not host:port (%s)", s, allowed)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "port %q in %q is not a number in 0..65535 (%s)", port, s, allowed)
	}
}

// corsOrigin accepts "*" (any origin), "" (no CORS headers) or one origin,
// which browsers compare byte for byte: scheme://host[:port], no path.
func (v *validator) corsOrigin(path, s string) {
	if s == "" || s == "*" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		v.add(path, "%q is not allowed (allowed: *, empty for no CORS headers, or one origin such as https://example.com without path or trailing slash)", s)
	}
}

// ips checks a list of IP literals. Announcing an unspecified address
// (0.0.0.0, ::) as a NAT 1:1 address would give peers nothing to reach.
func (v *validator) ips(path string, list []string, specified bool) {
	for i, s := range list {
		ip := net.ParseIP(s)
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case ip == nil:
			v.add(p, "%q is not an IP address (allowed: an IPv4 or IPv6 literal such as 192.0.2.1 or 2001:db8::1)", s)
		case specified && ip.IsUnspecified():
			v.add(p, "%q is not allowed (allowed: an address peers can reach, not 0.0.0.0 or ::)", s)
		}
	}
}

// prefixes checks a list of CIDRs or IP addresses.
func (v *validator) prefixes(path string, list []string) {
	for i, s := range list {
		if _, err := Prefixes([]string{s}); err != nil {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%s", err)
		}
	}
}

// videoCodecs are the names rtc.SelectIngest knows (rtc.VideoCodecs; rtc
// imports config, so the list is repeated here, and server's
// TestVideoCodecNames keeps the two the same).
var videoCodecs = []string{"H264", "H265", "VP8", "VP9", "AV1"}

// videoCodecs checks webrtc.video_codecs: known names, each once.
func (v *validator) videoCodecs(path string, list []string) {
	seen := map[string]bool{}
	for i, s := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		u := strings.ToUpper(s)
		if !slices.Contains(videoCodecs, u) {
			v.add(p, "%q is not a video codec sluice serves (allowed: %s)", s, strings.Join(videoCodecs, ", "))
		} else if seen[u] {
			v.add(p, "%q is listed twice", s)
		}
		seen[u] = true
	}
}

// iceServer checks one STUN/TURN server the way pion will use it, so that a
// bad URL fails at start-up with the setting's name rather than later.
func (v *validator) iceServer(path string, s ICEServer) {
	if len(s.URLs) == 0 {
		v.add(path+".urls", "is empty (allowed: one or more URLs starting with stun:, stuns:, turn: or turns:)")
	}
	turn := false
	for i, raw := range s.URLs {
		p := fmt.Sprintf("%s.urls[%d]", path, i)
		scheme, _, _ := strings.Cut(raw, ":")
		switch scheme {
		case "stun", "stuns":
		case "turn", "turns":
			turn = true
		default:
			v.add(p, "%q is not allowed (allowed: a URL starting with stun:, stuns:, turn: or turns:)", raw)
			continue
		}
		if _, err := stun.ParseURI(raw); err != nil {
			v.add(p, "%q is not a valid %s URL: %v (e.g. stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp)", raw, scheme, err)
		}
	}
	if turn && (s.Username == "" || s.Credential == "") {
		v.add(path, "TURN URLs need username and credential (allowed: both set when any URL is turn: or turns:)")
	}
}

// recordRule checks one recording rule.
func (v *validator) recordRule(path string, r record.Rule) {
	if err := record.CheckPattern(r.Streams); err != nil {
		v.add(path+".streams", "%v", err)
	}
	if r.Dir == "" {
		v.add(path+".dir", "is empty (allowed: the directory recordings go under, e.g. /var/lib/sluice/rec)")
	}
	if err := record.CheckName(r.Name); err != nil {
		v.add(path+".name", "%v", err)
	}
	if r.Segment != 0 {
		v.durRange(path+".segment", r.Segment, time.Second, 24*time.Hour)
	}
	if r.MaxAge != 0 && r.MaxAge < time.Second {
		v.add(path+".max_age", "%s is out of range (allowed 0s to keep files, or 1s or more)", shortDuration(r.MaxAge))
	}
	if r.MaxBytes < 0 {
		v.add(path+".max_bytes", "%d is out of range (allowed 0 for no bound, or a size such as 10GiB)", r.MaxBytes)
	}
	if r.Audio != "" {
		v.oneOf(path+".audio", r.Audio, record.AudioAAC, record.AudioOpus, record.AudioNone)
	}
}

// webhook checks one webhook endpoint.
func (v *validator) webhook(path string, h webhook.Config) {
	if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path+".url", "%q is not allowed (allowed: an http:// or https:// URL)", h.URL)
	}
	kinds := []string{"stream.published", "stream.unpublished", "viewer.joined", "viewer.left", "session.failed"}
	for i, e := range h.Events {
		if !slices.Contains(kinds, e) {
			v.add(fmt.Sprintf("%s.events[%d]", path, i), "%q is not allowed (allowed: %s)", e, strings.Join(kinds, ", "))
		}
	}
	v.durRange(path+".timeout", h.Timeout, 0, time.Minute)
	v.intRange(path+".retries", int64(h.Retries), 0, 20, "; 0 means 4")
	v.intRange(path+".queue", int64(h.Queue), 0, 1000000, "; 0 means 1000")
}

// cluster checks the cluster section; without Redis it is not used, and
// only the ranges are checked.
func (v *validator) cluster(c Cluster, listen string) {
	v.durRange("cluster.lease_ttl", c.LeaseTTL, time.Second, 5*time.Minute)
	v.durRange("cluster.linger", c.Linger, 0, 10*time.Minute)
	v.atLeast("cluster.capacity", c.Capacity, 0)
	if c.NodeID != "" && !validNodeID(c.NodeID) {
		v.add("cluster.node_id", "%q is not allowed (allowed: 1..64 characters of A-Z a-z 0-9 . _ -, or empty for a random id)", c.NodeID)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.add("cluster.public_url", "%q is not allowed (allowed: http:// or https:// URL of this node without path, e.g. https://edge1.example.com:8443)", c.PublicURL)
		}
	}
	if c.Redis == "" {
		return
	}
	if strings.Contains(c.Redis, "://") {
		if u, err := url.Parse(c.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			v.add("cluster.redis", "%q is not allowed (allowed: host:port such as 127.0.0.1:6379, or a redis:// or rediss:// URL)", c.Redis)
		}
	} else {
		v.hostPort("cluster.redis", c.Redis)
	}
	if len(c.Secret) < 16 {
		v.add("cluster.secret", "is %d characters (allowed: 16 or more; required with cluster.redis)", len(c.Secret))
	}
	if c.PublicURL == "" {
		if host, _, err := net.SplitHostPort(listen); err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				v.add("cluster.public_url", "is empty and http.listen %q names no host other nodes can reach (allowed: the URL of this node, e.g. http://10.0.0.5:8080)", listen)
			}
		}
	}
}

// validNodeID reports whether id can name a node: it goes into Redis keys
// and log lines.
func validNodeID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return id != ""
}

func (v *validator) rtmp(c RTMP) {
	if !c.Enabled {
		return
	}
	v.hostPort("rtmp.listen", c.Listen)
	if c.TLSListen != "" {
		v.hostPort("rtmp.tls_listen", c.TLSListen)
		if c.TLSCert == "" || c.TLSKey == "" {
			v.add("rtmp.tls_listen", "needs rtmp.tls_cert and rtmp.tls_key (allowed: empty for no RTMPS)")
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		v.add("rtmp.tls_cert", "tls_cert and tls_key must be set together")
	}
	v.durRange("rtmp.handshake_timeout", c.HandshakeTimeout, time.Second, time.Minute)
	v.durRange("rtmp.read_timeout", c.ReadTimeout, time.Second, 5*time.Minute)
	v.durRange("rtmp.write_timeout", c.WriteTimeout, time.Second, 5*time.Minute)
}

func (v *validator) srt(c SRT) {
	if !c.Enabled {
		return
	}
	v.hostPort("srt.listen", c.Listen)
	if n := len(c.Passphrase); n != 0 && (n < 10 || n > 79) {
		v.add("srt.passphrase", "is %d characters (allowed: empty, or 10..79 characters)", n)
	}
	v.durRange("srt.latency", c.Latency, 20*time.Millisecond, 10*time.Second)
	v.durRange("srt.handshake_timeout", c.HandshakeTimeout, time.Second, time.Minute)
	v.durRange("srt.read_timeout", c.ReadTimeout, time.Second, 5*time.Minute)
	v.durRange("srt.write_timeout", c.WriteTimeout, time.Second, 5*time.Minute)
}

func (v *validator) rtsp(r RTSP, httpListen string) {
	if r.Listen != "" {
		v.hostPort("rtsp.listen", r.Listen)
		if _, port, _ := net.SplitHostPort(r.Listen); r.Listen == httpListen && port != "0" {
			v.add("rtsp.listen", "%q is http.listen's address (allowed: another host:port, or empty for no RTSP)", r.Listen)
		}
	}
	switch {
	case r.UDPRTPPort == 0 && r.UDPRTCPPort == 0:
	case r.UDPRTPPort < 2 || r.UDPRTPPort > 65534 || r.UDPRTPPort%2 != 0:
		v.add("rtsp.udp_rtp_port", "%d is not allowed (allowed: an even port in 2..65534, or 0 with udp_rtcp_port 0 for TCP only)", r.UDPRTPPort)
	case r.UDPRTCPPort != r.UDPRTPPort+1:
		v.add("rtsp.udp_rtcp_port", "%d is not allowed (allowed: udp_rtp_port+1 = %d)", r.UDPRTCPPort, r.UDPRTPPort+1)
	}
	if r.TLSListen != "" {
		v.hostPort("rtsp.tls_listen", r.TLSListen)
		if r.TLSCert == "" || r.TLSKey == "" {
			v.add("rtsp.tls_listen", "RTSPS needs rtsp.tls_cert and rtsp.tls_key (allowed: both PEM file paths, or tls_listen empty)")
		}
	} else if r.TLSCert != "" || r.TLSKey != "" {
		v.add("rtsp.tls_cert", "tls_cert and tls_key are RTSPS's (allowed: set with rtsp.tls_listen, or empty)")
	}
}

func (v *validator) sources(list []Source) {
	seen := map[string]bool{}
	for i, s := range list {
		p := fmt.Sprintf("sources[%d]", i)
		if !hub.ValidName(s.Stream) {
			v.add(p+".stream", "%.40q is not a stream name (allowed: 1-128 of A-Z a-z 0-9 - _ . ~, not starting with a dot)", s.Stream)
		} else if seen[s.Stream] {
			v.add(p+".stream", "%q is pulled twice (allowed: one source per stream)", s.Stream)
		}
		seen[s.Stream] = true
		if u, err := url.Parse(s.URL); err != nil || !slices.Contains([]string{"rtsp", "rtsps", "whep", "wheps"}, u.Scheme) || u.Host == "" {
			v.add(p+".url", "%s is not allowed (allowed: an rtsp://, rtsps://, whep:// or wheps:// URL with a host)", redactURL(s.URL))
		}
		v.oneOf(p+".transport", s.Transport, "", "auto", "tcp", "udp")
		if d := s.OnDemandCloseAfter; d != 0 {
			v.durRange(p+".on_demand_close_after", d, time.Second, time.Hour)
		}
	}
}

// redactURL is the URL without its password, for errors and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "an unparsable URL"
	}
	return u.Redacted()
}
