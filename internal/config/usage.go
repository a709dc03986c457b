package config

import (
	"fmt"
	"io"
)

// help is the one-line description of each setting in the usage text. The
// full documentation, with allowed values, is the example file sluice.yml.
var help = map[string]string{
	"http.listen":         "host:port of the HTTP server (WHIP, WHEP, pages); :8080 for all interfaces",
	"http.cors_origin":    `Access-Control-Allow-Origin: "*", one origin, or empty for no CORS headers`,
	"http.max_body_bytes": "largest accepted request body (SDP offer, trickle PATCH), 1..16777216",

	"http.tls_cert":               "PEM certificate file; with http.tls_key, serve HTTPS",
	"http.tls_key":                "PEM private key file for http.tls_cert",
	"http.read_header_timeout":    "time to read request headers, 1s..5m",
	"http.read_timeout":           "time to read a whole request, 1s..5m",
	"http.idle_timeout":           "keep-alive connections idle longer are closed, 1s..1h",
	"http.ice_servers":            "STUN/TURN servers offered to clients in Link headers, in YAML flow syntax",
	"http.ice_servers_on_options": "also send the ice-server Link headers on OPTIONS",
	"http.trusted_proxies":        "reverse proxies (CIDRs or IPs) whose Forwarded / X-Forwarded-For name the client; empty trusts none",

	"webrtc.udp_port":          "the one UDP port carrying all WebRTC media; 0 lets the OS pick",
	"webrtc.tcp_enabled":       "also accept ICE over TCP, on webrtc.tcp_port",
	"webrtc.tcp_port":          "the one TCP port for ICE-TCP; 0 lets the OS pick",
	"webrtc.listen_ips":        "IPs to gather host candidates on; empty means all interfaces",
	"webrtc.nat_1to1_ips":      "public IPs announced instead of the local ones (Docker, 1:1 NAT)",
	"webrtc.ice_servers":       "STUN/TURN servers for srflx/relay candidates, in YAML flow syntax",
	"webrtc.connect_timeout":   "close a session not ICE/DTLS-connected within this time, 1s..5m",
	"webrtc.consent_timeout":   "end a connected session whose peer sent nothing (ICE check, media, RTCP) for this long, 3s..5m",
	"webrtc.video_codecs":      "video codecs publishers may send, in order of preference (H264, H265, VP8, VP9, AV1); empty = all, in the publisher's order",
	"webrtc.detach_viewers":    "once a viewer is connected, close its pion PeerConnection and answer its ICE and RTCP in sluice (about 30 KB instead of 150 KB per viewer)",
	"webrtc.detach_publishers": "once a WHIP publisher (UDP, no simulcast) is connected, close its pion PeerConnection: sluice reads its SRTP and sends its receiver reports, NACKs, PLIs and TWCC feedback",

	"stream.ring_packets":       "packets kept per stream (GOP cache); power of two in 256..1048576",
	"stream.pli_min_interval":   "at most one keyframe request per stream per interval, 100ms..1m",
	"stream.ready_timeout":      "how long a viewer waits for a publisher still connecting, 0..1m",
	"stream.reconnect_grace":    "how long viewers wait for a publisher that left to come back, 0..5m (0: end at once)",
	"stream.reorder_packets":    "reorder window per published track, in packets, 1..4096",
	"stream.reorder_delay":      "reorder window per published track, in time (gaps older are given up), 10ms..1s",
	"stream.pli_interval":       "ask for a keyframe when none came for this long; 0 = off, else 1s..1h",
	"stream.wait_for_publisher": "how long a viewer of an unpublished stream waits for it, 0..1m (0: 404 at once)",
	"stream.publisher_takeover": "a new authorised publisher replaces the current one instead of 409",

	"limits.max_sessions":           "publishers plus viewers on this server, >= 1",
	"limits.max_viewers_per_stream": "viewers of one stream, >= 1",
	"limits.max_sessions_per_ip":    "sessions one client IP may hold (429 beyond), >= 1",
	"limits.per_ip_exempt":          "client addresses (CIDRs or IPs) max_sessions_per_ip does not bound; empty exempts none",

	"hls.enabled":            "serve streams as LL-HLS at /hls/{stream}/index.m3u8",
	"hls.always":             "mux every stream from its publication, not from its first HLS request",
	"hls.segment_duration":   "shortest HLS segment (cut at the next keyframe), 200ms..30s",
	"hls.part_duration":      "LL-HLS part duration, 20ms..hls.segment_duration",
	"hls.segment_count":      "segments kept in the playlist, 7..100",
	"hls.close_after":        "stop a stream's HLS muxer after no request for this long, 5s..24h",
	"playback.max_duration":  "longest span of one /playback/{stream}.mp4 request, 1s..24h",
	"transcode.aac_bitrate":  "AAC bitrate in bit/s of the Opus→AAC transcoder (LL-HLS, recordings), 16000..320000; 0: 64000 per channel",
	"transcode.opus_bitrate": "Opus bitrate in bit/s of the AAC/G.711→Opus transcoder (WebRTC viewers), 6000..256000; 0: 64000 per channel",
	"transcode.idle_close":   "stop a transcoder to Opus this long after its last viewer left, 0s..1h",
	"transcode.always":       "run transcoders to Opus from a stream's publication, so viewers hear sound from their first packet",

	"rtsp.listen":        "host:port of the RTSP server (read any stream, take RTSP publishers); empty = off",
	"rtsp.udp_rtp_port":  "UDP port of RTSP's RTP (even; udp_rtcp_port is the next); both 0 = TCP only",
	"rtsp.udp_rtcp_port": "UDP port of RTSP's RTCP, udp_rtp_port+1",
	"rtsp.tls_listen":    "host:port of RTSPS (TCP), with rtsp.tls_cert and rtsp.tls_key; empty = off",
	"rtsp.tls_cert":      "PEM certificate file of RTSPS",
	"rtsp.tls_key":       "PEM private key file of RTSPS",
	"sources":            "pulled streams (stream, url: rtsp://, rtsps://, whep:// or wheps://, on_demand, on_demand_close_after, transport: auto|tcp|udp), in YAML flow syntax; SIGHUP reloads them",

	"record.rules": "recording rules (streams, dir, name, segment, max_age, max_bytes, audio, manual), in YAML flow syntax",

	"auth.default": "allow or deny requests that no auth rule matches",
	"auth.rules":   "auth rules (streams, actions, mode: allow|deny|static|jwt|callback), in YAML flow syntax",

	"rtmp.enabled":           "serve RTMP: publish and play at rtmp://HOST/{stream} and rtmp://HOST/live/{stream}",
	"rtmp.listen":            "host:port of the RTMP server; :1935 for all interfaces",
	"rtmp.tls_listen":        "host:port of the RTMPS server (e.g. :1936); empty = off; needs rtmp.tls_cert and rtmp.tls_key",
	"rtmp.tls_cert":          "PEM certificate file for RTMPS",
	"rtmp.tls_key":           "PEM private key file for rtmp.tls_cert",
	"rtmp.handshake_timeout": "time for an RTMP client's handshake, connect and publish/play, 1s..1m",
	"rtmp.read_timeout":      "drop an RTMP publisher silent this long, 1s..5m",
	"rtmp.write_timeout":     "drop an RTMP player that takes no data this long, 1s..5m",
	"srt.enabled":            "serve SRT (UDP): stream id publish:{stream} or read:{stream}, MPEG-TS inside",
	"srt.listen":             "host:port (UDP) of the SRT server; :8890 for all interfaces",
	"srt.passphrase":         "SRT encryption passphrase every caller must use, 10..79 characters; empty = none",
	"srt.latency":            "SRT receive latency (TSBPD), 20ms..10s",
	"srt.handshake_timeout":  "time from an SRT connection to its first MPEG-TS tables, 1s..1m",
	"srt.read_timeout":       "drop an SRT publisher silent this long, 1s..5m",
	"srt.write_timeout":      "drop an SRT reader that takes no data this long, 1s..5m",
	"forward":                "push streams to other services: [{streams: glob, to: [rtmp://…, rtmps://…, srt://…]}], in YAML flow syntax",

	"events.webhooks": "HTTP endpoints that receive stream/session events, in YAML flow syntax",

	"metrics.per_stream_labels": "label packet/byte/loss/session metrics by stream (more series)",
	"admin.listen":              "host:port of the admin listener (/metrics, /healthz, /readyz, /debug/pprof); empty = off",

	"cluster.redis":      "Redis of the origin/edge cluster (host:port or redis:// URL); empty = single node",
	"cluster.node_id":    "this node's id in the cluster; empty = random at start",
	"cluster.public_url": "base URL other nodes and redirected viewers reach this node at; empty = from http.listen",
	"cluster.capacity":   "WHEP viewers this node serves before redirecting new ones (307); 0 = no limit",
	"cluster.secret":     "shared secret that authenticates node-to-node pulls, >= 16 characters",
	"cluster.lease_ttl":  "stream ownership and node adverts expire this long after renewal stops, 1s..5m",
	"cluster.linger":     "an edge stops pulling a stream this long after its last viewer left, 0..10m",

	"log.level":  "debug, info, warn or error",
	"log.format": "text or json",
}

// printUsage writes the -h text: every flag with its default and its
// environment variable, in the order of sluice.yml.
func printUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: sluice [flags]

sluice is a WebRTC streaming server: publishers push with WHIP, viewers pull
with WHEP. Each setting is taken from, later winning: the built-in default,
the YAML file named by -config, its SLUICE_* environment variable, its flag.
Durations are Go durations (500ms, 10s, 1m). Lists are comma-separated in
flags and environment variables; webrtc.ice_servers takes YAML flow syntax
there, e.g. %s.
The example sluice.yml documents every setting and its allowed values.

  -config path
    	YAML config file (env %s)
`, `'[{urls: ["stun:stun.l.google.com:19302"]}]'`, envConfig)
	def := Default()
	for _, f := range fields {
		fmt.Fprintf(w, "  -%s %s\n    \t%s (default %s, env %s)\n",
			f.path, f.kind(), help[f.path], f.text(f.in(&def)), f.env())
	}
}
