// Package config turns a YAML file, SLUICE_* environment variables and command-line flags into one validated Config.
//
// Every setting has a yaml path such as "webrtc.udp_port". The same path names
// its flag (-webrtc.udp_port) and, upper-cased with dots as underscores, its
// environment variable (SLUICE_WEBRTC_UDP_PORT). Names are derived from the
// yaml tags by reflection, so a new field gets its flag and variable without
// further code; it only needs a line in the help table (usage.go), a check in
// Validate and an entry in the documented example sluice.yml.
package config

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/forward"
	"github.com/sluice-media/sluice/internal/record"
	"github.com/sluice-media/sluice/internal/webhook"
)

// Config is everything an operator can set. The zero value is not usable;
// start from Default or Load.
type Config struct {
	HTTP   HTTP   `yaml:"http"`
	WebRTC WebRTC `yaml:"webrtc"`
	Stream Stream `yaml:"stream"`
	Limits Limits `yaml:"limits"`
	HLS    HLS    `yaml:"hls"`
	RTSP   RTSP   `yaml:"rtsp"`
	// Sources are the streams sluice pulls (RTSP cameras, other servers).
	Sources []Source `yaml:"sources"` // default empty
	Record  Record   `yaml:"record"`
	// Playback serves recordings as MP4 at /playback/{stream}.mp4.
	Playback Playback `yaml:"playback"`
	// Transcode is the audio transcoders: Opus→AAC for LL-HLS and
	// recordings, AAC and G.711→Opus for WebRTC viewers.
	Transcode Transcode   `yaml:"transcode"`
	Auth      auth.Config `yaml:"auth"`
	Events    Events      `yaml:"events"`
	Metrics   Metrics     `yaml:"metrics"`
	Admin     Admin       `yaml:"admin"`
	Log       Log         `yaml:"log"`
	Cluster   Cluster     `yaml:"cluster"`
	RTMP      RTMP        `yaml:"rtmp"`
	SRT       SRT         `yaml:"srt"`
	// Forward pushes streams to other services over RTMP or SRT.
	Forward []forward.Rule `yaml:"forward"` // default empty: nothing is forwarded
}

// RTMP configures the RTMP server: publish and play at
// rtmp://HOST/{stream} and rtmp://HOST/live/{stream}.
type RTMP struct {
	Enabled   bool   `yaml:"enabled"`    // default true
	Listen    string `yaml:"listen"`     // default "127.0.0.1:1935"; host:port
	TLSListen string `yaml:"tls_listen"` // default empty = off; host:port of RTMPS (e.g. ":1936"), needs tls_cert and tls_key
	TLSCert   string `yaml:"tls_cert"`   // default empty; PEM certificate file for RTMPS
	TLSKey    string `yaml:"tls_key"`    // default empty; PEM key file, set together with tls_cert

	HandshakeTimeout time.Duration `yaml:"handshake_timeout"` // default 10s; 1s..1m: handshake, connect and publish/play
	ReadTimeout      time.Duration `yaml:"read_timeout"`      // default 10s; 1s..5m: a publisher silent this long is dropped
	WriteTimeout     time.Duration `yaml:"write_timeout"`     // default 10s; 1s..5m: a player that takes no data this long is dropped
}

// SRT configures the SRT server (UDP): stream id publish:{stream} or
// read:{stream}, MPEG-TS inside.
type SRT struct {
	Enabled    bool          `yaml:"enabled"`    // default true
	Listen     string        `yaml:"listen"`     // default "127.0.0.1:8890"; host:port (UDP)
	Passphrase string        `yaml:"passphrase"` // default empty = no encryption; 10..79 characters: every caller must use it
	Latency    time.Duration `yaml:"latency"`    // default 120ms; 20ms..10s: the receive latency (SRT's TSBPD delay)

	HandshakeTimeout time.Duration `yaml:"handshake_timeout"` // default 10s; 1s..1m: from the connection to the first MPEG-TS tables
	ReadTimeout      time.Duration `yaml:"read_timeout"`      // default 10s; 1s..5m: a publisher silent this long is dropped
	WriteTimeout     time.Duration `yaml:"write_timeout"`     // default 10s; 1s..5m: a reader that takes no data this long is dropped
}

// Cluster configures the origin/edge cluster on Redis. With Redis empty
// (the default) sluice is a single node and ignores the other fields.
type Cluster struct {
	Redis     string        `yaml:"redis"`      // default empty = single node; host:port, or a redis:// or rediss:// URL
	NodeID    string        `yaml:"node_id"`    // default empty = random at start; 1..64 of A-Z a-z 0-9 . _ -
	PublicURL string        `yaml:"public_url"` // default empty = http(s)://http.listen; the base URL other nodes and redirected clients use
	Capacity  int           `yaml:"capacity"`   // default 0 = no limit; >= 0: WHEP viewers this node serves before redirecting (307)
	Secret    string        `yaml:"secret"`     // default empty; required with redis, >= 16 characters: authenticates node-to-node pulls
	LeaseTTL  time.Duration `yaml:"lease_ttl"`  // default 10s; 1s..5m: stream ownership and node adverts expire this long after their node stops renewing
	Linger    time.Duration `yaml:"linger"`     // default 5s; 0..10m: an edge keeps pulling a stream this long after its last local viewer left
}

// Metrics configures the Prometheus metrics at /metrics.
type Metrics struct {
	// PerStreamLabels adds a stream label to the packet, byte, loss and
	// session metrics. Default false: cardinality stays bounded however
	// many streams come and go.
	PerStreamLabels bool `yaml:"per_stream_labels"`
}

// Admin configures the optional admin listener (metrics, health, pprof).
type Admin struct {
	Listen string `yaml:"listen"` // default empty = off; host:port, not http.listen's
}

// Events configures where stream and session events go besides the log.
type Events struct {
	Webhooks []webhook.Config `yaml:"webhooks"` // default empty
}

// HTTP configures the HTTP listener that serves WHIP, WHEP and the pages.
type HTTP struct {
	Listen       string `yaml:"listen"`         // default "127.0.0.1:8080"; must be host:port
	CORSOrigin   string `yaml:"cors_origin"`    // default "*"
	MaxBodyBytes int64  `yaml:"max_body_bytes"` // default 65536; 1..16 MiB

	TLSCert string `yaml:"tls_cert"` // default empty; PEM certificate file: serve HTTPS
	TLSKey  string `yaml:"tls_key"`  // default empty; PEM key file, set together with tls_cert

	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 10s; 1s..5m
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // default 30s; 1s..5m
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // default 2m; 1s..1h

	ICEServers          []LinkICEServer `yaml:"ice_servers"`            // default empty; offered to clients in Link headers (RFC 9725 §4.6)
	ICEServersOnOptions bool            `yaml:"ice_servers_on_options"` // default false; also send the Link headers on OPTIONS

	// TrustedProxies are the reverse proxies (CIDRs or IPs) whose
	// Forwarded (RFC 7239) or X-Forwarded-For header names the client;
	// from anyone else those headers are ignored. Default loopback.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// LinkICEServer is a STUN/TURN server offered to WHIP/WHEP clients in a
// Link rel="ice-server" header. With TURNSecret set, each response carries
// fresh time-limited credentials (the TURN REST API scheme: username
// "expiry:user", credential base64(HMAC-SHA1(secret, username))).
type LinkICEServer struct {
	URLs       []string      `yaml:"urls"`        // each starts with stun:, stuns:, turn: or turns:
	Username   string        `yaml:"username"`    // static TURN username, or the user part with turn_secret
	Credential string        `yaml:"credential"`  // static TURN password
	TURNSecret string        `yaml:"turn_secret"` // shared secret with the TURN server (coturn static-auth-secret)
	TURNTTL    time.Duration `yaml:"turn_ttl"`    // lifetime of generated credentials; default 24h when turn_secret is set
}

// WebRTC configures ICE: where media is received and which candidates are
// announced to peers.
type WebRTC struct {
	UDPPort        int           `yaml:"udp_port"`        // default 8189; 0..65535 (0 = OS picks, for tests)
	TCPEnabled     bool          `yaml:"tcp_enabled"`     // default false: ICE-TCP on one TCP port
	TCPPort        int           `yaml:"tcp_port"`        // default 8189; 0..65535
	ListenIPs      []string      `yaml:"listen_ips"`      // default empty = all interfaces (incl. loopback); each must be an IP literal
	NAT1To1IPs     []string      `yaml:"nat_1to1_ips"`    // default empty; public IPs announced as host candidates instead of the local ones (Docker/NAT); each must be an IP literal
	ICEServers     []ICEServer   `yaml:"ice_servers"`     // default empty; STUN/TURN the server uses to gather srflx/relay candidates
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // default 10s; 1s..5m: a session not ICE/DTLS-connected in this time is closed
	// ConsentTimeout ends a connected session whose peer sent nothing
	// (ICE consent check, media, RTCP) for this long, on pion's path and
	// on sluice's own. Default 15s; 3s..5m.
	ConsentTimeout time.Duration `yaml:"consent_timeout"`
	// DetachViewers closes a connected viewer's pion PeerConnection and
	// answers its ICE, RTCP and DTLS close in sluice (whep/detach.go).
	// Default true.
	DetachViewers bool `yaml:"detach_viewers"`
	// DetachPublishers moves a connected WHIP publisher below pion: sluice
	// reads its SRTP and sends its RTCP feedback (TWCC, receiver reports)
	// itself (whip/detach.go). Default true.
	DetachPublishers bool `yaml:"detach_publishers"`
	// VideoCodecs, if set, are the video codecs publishers may send, in
	// sluice's order of preference; default empty takes every one sluice
	// serves (H264, H265, VP8, VP9, AV1) in the publisher's own order.
	VideoCodecs []string `yaml:"video_codecs"`
}

// ICEServer is one STUN or TURN server, as in the W3C RTCIceServer dictionary.
type ICEServer struct {
	URLs       []string `yaml:"urls"` // each must start with stun:, stuns:, turn: or turns:
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// Stream configures the per-stream fan-out buffer.
type Stream struct {
	RingPackets    int           `yaml:"ring_packets"`     // default 4096; power of two in 256..1048576 (per-stream packet ring = GOP cache)
	PLIMinInterval time.Duration `yaml:"pli_min_interval"` // default 1s; 100ms..1m: at most one keyframe request per stream per interval
	ReadyTimeout   time.Duration `yaml:"ready_timeout"`    // default 5s; 0..1m: how long a WHEP request waits for a publisher that is still connecting
	// PublisherTakeover lets an authorised new publisher replace the current
	// one instead of getting 409 Conflict. Default false.
	PublisherTakeover bool `yaml:"publisher_takeover"`
	// ReconnectGrace is how long a stream whose publisher left keeps its
	// viewers waiting for a new publisher (0..5m; 0 ends it at once).
	ReconnectGrace time.Duration `yaml:"reconnect_grace"` // default 10s
	// ReorderPackets and ReorderDelay bound each published track's reorder
	// window (1..4096 packets, 10ms..1s).
	ReorderPackets int           `yaml:"reorder_packets"` // default 64
	ReorderDelay   time.Duration `yaml:"reorder_delay"`   // default 100ms
	// PLIInterval asks a publisher for a keyframe when none came for this
	// long; 0 (default) is off, else 1s..1h.
	PLIInterval time.Duration `yaml:"pli_interval"`
	// WaitForPublisher is how long a WHEP request for a stream nobody
	// publishes waits for a publisher (0..1m); 0 answers 404 at once.
	WaitForPublisher time.Duration `yaml:"wait_for_publisher"`
}

// HLS configures the LL-HLS output at /hls/{stream}/index.m3u8.
type HLS struct {
	Enabled bool `yaml:"enabled"` // default true: serve /hls/
	// Always muxes every stream from its publication on; default false
	// muxes a stream from its first HLS request.
	Always          bool          `yaml:"always"`
	SegmentDuration time.Duration `yaml:"segment_duration"` // default 1s; 200ms..30s: shortest segment, cut at the next keyframe
	PartDuration    time.Duration `yaml:"part_duration"`    // default 200ms; 20ms..segment_duration: LL-HLS part
	SegmentCount    int           `yaml:"segment_count"`    // default 7; 7..100: segments in the playlist
	CloseAfter      time.Duration `yaml:"close_after"`      // default 1m; 5s..24h: stop a muxer without requests
}

// RTSP configures the RTSP server: readers of any stream, RTSP publishers.
type RTSP struct {
	Listen      string `yaml:"listen"`        // default "127.0.0.1:8554"; host:port, empty = RTSP off
	UDPRTPPort  int    `yaml:"udp_rtp_port"`  // default 8000; even, with udp_rtcp_port = udp_rtp_port+1; both 0 = UDP off (TCP only)
	UDPRTCPPort int    `yaml:"udp_rtcp_port"` // default 8001
	TLSListen   string `yaml:"tls_listen"`    // default empty = RTSPS off; host:port, e.g. 127.0.0.1:8322, with tls_cert and tls_key
	TLSCert     string `yaml:"tls_cert"`      // default empty; PEM certificate file of RTSPS
	TLSKey      string `yaml:"tls_key"`       // default empty; PEM key file of RTSPS
}

// Source is one pulled stream: sluice plays the URL with an RTSP client
// (rtsp://, rtsps://) or a WHEP client (whep://, wheps://: WHEP over
// http:// or https://) and publishes what it gets as the stream.
type Source struct {
	Stream string `yaml:"stream"` // the stream name, as in WHIP/WHEP URLs
	URL    string `yaml:"url"`    // rtsp://, rtsps://, whep:// or wheps://; RTSP credentials in the URL, a WHEP bearer token as ?token=
	// OnDemand pulls only while someone reads the stream; default false
	// pulls all the time sluice runs.
	OnDemand bool `yaml:"on_demand"`
	// OnDemandCloseAfter stops an on-demand pull this long after its last
	// reader left; default 10s, 1s..1h.
	OnDemandCloseAfter time.Duration `yaml:"on_demand_close_after"`
	Transport          string        `yaml:"transport"` // default "auto" (UDP, falling back to TCP); auto, tcp or udp
}

// Record configures recording streams to fMP4 files on disk.
type Record struct {
	Rules []record.Rule `yaml:"rules"` // default empty: nothing is recorded
}

// Playback configures /playback/{stream}.mp4, the recordings as MP4.
type Playback struct {
	MaxDuration time.Duration `yaml:"max_duration"` // default 1h; 1s..24h: longest span of one request
}

// Transcode configures the audio transcoders: Opus→AAC, which a stream's
// LL-HLS and recording share, and AAC/G.711→Opus, which its WebRTC viewers
// share.
type Transcode struct {
	AACBitrate  int           `yaml:"aac_bitrate"`  // default 0: 64000 per channel; 0 or 16000..320000 bit/s
	OpusBitrate int           `yaml:"opus_bitrate"` // default 0: 64000 per channel; 0 or 6000..256000 bit/s
	IdleClose   time.Duration `yaml:"idle_close"`   // default 10s; 0s..1h: keep a transcoder to Opus this long after its last viewer
	Always      bool          `yaml:"always"`       // default false: run transcoders to Opus from publication, not from the first viewer
}

// Limits bounds how many sessions the server accepts.
type Limits struct {
	MaxSessions         int `yaml:"max_sessions"`           // default 10000; >=1: publishers+viewers on the server
	MaxViewersPerStream int `yaml:"max_viewers_per_stream"` // default 5000; >=1
	MaxSessionsPerIP    int `yaml:"max_sessions_per_ip"`    // default 100; >=1: sessions one client address may hold (429 beyond)
	// PerIPExempt are client addresses (CIDRs or IPs, after the trusted
	// proxies' headers are read) that max_sessions_per_ip does not bound.
	// Default loopback.
	PerIPExempt []string `yaml:"per_ip_exempt"`
}

// Log configures the process logger (see Config.Logger).
type Log struct {
	Level  string `yaml:"level"`  // default "info"; one of debug, info, warn, error
	Format string `yaml:"format"` // default "text"; one of text, json
}

// Default returns the built-in defaults: serve on localhost, all WebRTC media
// on UDP port 8189. Lists are nil, never empty non-nil slices, so that a
// loaded Config compares equal to Default when nothing was changed.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Listen:       "127.0.0.1:8080",
			CORSOrigin:   "*",
			MaxBodyBytes: 64 << 10,

			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,

			TrustedProxies: Loopback(),
		},
		WebRTC: WebRTC{
			UDPPort:          8189,
			TCPEnabled:       false,
			TCPPort:          8189,
			ConnectTimeout:   10 * time.Second,
			ConsentTimeout:   15 * time.Second,
			DetachViewers:    true,
			DetachPublishers: true,
		},
		Stream: Stream{
			RingPackets:    4096,
			PLIMinInterval: time.Second,
			ReadyTimeout:   5 * time.Second,
			ReorderPackets: 64,
			ReconnectGrace: 10 * time.Second,
			ReorderDelay:   100 * time.Millisecond,
		},
		HLS: HLS{
			Enabled:         true,
			SegmentDuration: time.Second,
			PartDuration:    200 * time.Millisecond,
			SegmentCount:    7,
			CloseAfter:      time.Minute,
		},
		Transcode: Transcode{IdleClose: 10 * time.Second},
		RTSP: RTSP{
			Listen:      "127.0.0.1:8554",
			UDPRTPPort:  8000,
			UDPRTCPPort: 8001,
		},
		Playback: Playback{MaxDuration: time.Hour},
		Limits: Limits{
			MaxSessions:         10000,
			MaxViewersPerStream: 5000,
			MaxSessionsPerIP:    100,
			PerIPExempt:         Loopback(),
		},
		Auth: auth.Config{Default: "allow"},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		Cluster: Cluster{
			LeaseTTL: 10 * time.Second,
			Linger:   5 * time.Second,
		},
		RTMP: RTMP{
			Enabled:          true,
			Listen:           "127.0.0.1:1935",
			HandshakeTimeout: 10 * time.Second,
			ReadTimeout:      10 * time.Second,
			WriteTimeout:     10 * time.Second,
		},
		SRT: SRT{
			Enabled:          true,
			Listen:           "127.0.0.1:8890",
			Latency:          120 * time.Millisecond,
			HandshakeTimeout: 10 * time.Second,
			ReadTimeout:      10 * time.Second,
			WriteTimeout:     10 * time.Second,
		},
	}
}

// Loopback is the default of http.trusted_proxies and limits.per_ip_exempt:
// the IPv4 and IPv6 loopback networks.
func Loopback() []string { return []string{"127.0.0.0/8", "::1/128"} }

// Prefixes parses a validated list of CIDRs or IP addresses (an IP is its
// own /32 or /128).
func Prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (192.0.2.0/24, 2001:db8::/32) nor an IP address", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
