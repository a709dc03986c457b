package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/sluice-media/sluice/internal/record"
)

// writeConfig writes a YAML file for one test and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadCase runs load with an optional YAML file (added as -config first).
func loadCase(t *testing.T, file string, args, env []string) (Config, error) {
	t.Helper()
	if file != "" {
		args = append([]string{"-config", writeConfig(t, file)}, args...)
	}
	return load(args, env, &bytes.Buffer{})
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("Load with no sources = %+v, want Default()", cfg)
	}
}

func TestExampleFileIsDefault(t *testing.T) {
	const path = "../../sluice.yml"
	cfg, err := Load([]string{"-config", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("sluice.yml loads as\n%+v\nwant Default()\n%+v", cfg, Default())
	}

	// The example documents every setting: each key is present in the file.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		sec, key, nested := strings.Cut(f.path, ".")
		if !nested { // a top-level setting (sources)
			if _, ok := root[sec]; !ok {
				t.Errorf("sluice.yml does not show %s", f.path)
			}
			continue
		}
		m, _ := root[sec].(map[string]any)
		if _, ok := m[key]; !ok {
			t.Errorf("sluice.yml does not show %s", f.path)
		}
	}
}

func TestPrecedence(t *testing.T) {
	const file = `
http:
  listen: 127.0.0.1:1000
webrtc:
  udp_port: 1000
  tcp_enabled: true
  listen_ips: [10.0.0.1]
  ice_servers:
    - urls: ["stun:file.example.com"]
  connect_timeout: 20s
log:
  level: warn
`
	tests := []struct {
		name string
		file string
		args []string
		env  []string
		want func(*Config)
	}{
		{name: "defaults", want: func(*Config) {}},
		{
			name: "file over defaults",
			file: file,
			want: func(c *Config) {
				c.HTTP.Listen = "127.0.0.1:1000"
				c.WebRTC.UDPPort = 1000
				c.WebRTC.TCPEnabled = true
				c.WebRTC.ListenIPs = []string{"10.0.0.1"}
				c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"stun:file.example.com"}}}
				c.WebRTC.ConnectTimeout = 20 * time.Second
				c.Log.Level = "warn"
			},
		},
		{
			name: "env over file",
			file: file,
			env: []string{
				"SLUICE_WEBRTC_UDP_PORT=2000",
				"SLUICE_WEBRTC_TCP_ENABLED=false",
				"SLUICE_WEBRTC_LISTEN_IPS=10.0.0.2, 10.0.0.3",
				"SLUICE_WEBRTC_NAT_1TO1_IPS=203.0.113.2",
				`SLUICE_WEBRTC_ICE_SERVERS=[{urls: ["turn:env.example.com"], username: u, credential: p}]`,
				"SLUICE_LOG_LEVEL=error",
				"PATH=/bin", // not ours: ignored
			},
			want: func(c *Config) {
				c.HTTP.Listen = "127.0.0.1:1000"
				c.WebRTC.UDPPort = 2000
				c.WebRTC.ListenIPs = []string{"10.0.0.2", "10.0.0.3"}
				c.WebRTC.NAT1To1IPs = []string{"203.0.113.2"}
				c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"turn:env.example.com"}, Username: "u", Credential: "p"}}
				c.WebRTC.ConnectTimeout = 20 * time.Second
				c.Log.Level = "error"
			},
		},
		{
			name: "flag over env over file",
			file: file,
			env:  []string{"SLUICE_WEBRTC_UDP_PORT=2000", "SLUICE_LOG_LEVEL=error", "SLUICE_STREAM_RING_PACKETS=8192"},
			args: []string{
				"-webrtc.udp_port", "3000",
				"-webrtc.tcp_enabled=false",
				"-webrtc.listen_ips=",
				"-webrtc.connect_timeout", "1m",
				"-log.level=debug",
				"-log.format", "json",
			},
			want: func(c *Config) {
				c.HTTP.Listen = "127.0.0.1:1000"
				c.WebRTC.UDPPort = 3000
				c.WebRTC.ICEServers = []ICEServer{{URLs: []string{"stun:file.example.com"}}}
				c.WebRTC.ConnectTimeout = time.Minute
				c.Stream.RingPackets = 8192
				c.Log.Level = "debug"
				c.Log.Format = "json"
			},
		},
		{
			name: "config file from SLUICE_CONFIG",
			env:  []string{"SLUICE_CONFIG=" + writeConfig(t, "limits: {max_sessions: 7}\n")},
			want: func(c *Config) { c.Limits.MaxSessions = 7 },
		},
		{
			name: "SLUICE_TEST_* switches of the test suite are not settings",
			env:  []string{"SLUICE_TEST_REQUIRE_FFPROBE=1", "SLUICE_LIMITS_MAX_SESSIONS=9"},
			want: func(c *Config) { c.Limits.MaxSessions = 9 },
		},
		{
			name: "bare bool flag, last flag wins",
			args: []string{"-webrtc.tcp_enabled", "-http.listen", ":1", "-http.listen", ":2"},
			want: func(c *Config) { c.WebRTC.TCPEnabled = true; c.HTTP.Listen = ":2" },
		},
		{
			name: "empty file, null values and scalar list keep or set as written",
			file: "# nothing\nhttp:\nwebrtc:\n  listen_ips:\n  nat_1to1_ips: 203.0.113.1,203.0.113.2\n  udp_port: 0\nstream:\n  ready_timeout: 0\n",
			want: func(c *Config) {
				c.WebRTC.NAT1To1IPs = []string{"203.0.113.1", "203.0.113.2"}
				c.WebRTC.UDPPort = 0
				c.Stream.ReadyTimeout = 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadCase(t, tt.file, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// TestErrors checks that every invalid input is refused with an error that
// names the setting (and its source) and what is allowed.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string
		env  []string
		want []string // substrings of the error
	}{
		{name: "listen not host:port", args: []string{"-http.listen", "8080"},
			want: []string{"flag -http.listen: http.listen:", `"8080" is not host:port`, "allowed"}},
		{name: "listen bad port", env: []string{"SLUICE_HTTP_LISTEN=:http"},
			want: []string{"SLUICE_HTTP_LISTEN: http.listen:", "0..65535"}},
		{name: "cors origin with path", args: []string{"-http.cors_origin", "https://example.com/"},
			want: []string{"http.cors_origin:", "allowed: *, empty"}},
		{name: "body too large", args: []string{"-http.max_body_bytes", "16777217"},
			want: []string{"http.max_body_bytes: 16777217 is out of range (allowed 1..16777216"}},
		{name: "body zero", args: []string{"-http.max_body_bytes=0"},
			want: []string{"http.max_body_bytes: 0 is out of range"}},
		{name: "udp port", args: []string{"-webrtc.udp_port", "70000"},
			want: []string{"webrtc.udp_port: 70000 is out of range (allowed 0..65535)"}},
		{name: "tcp port negative", file: "# comment\nwebrtc:\n  # comment\n\n  tcp_port: -1 # comment\n",
			want: []string{"sluice.yml:5: webrtc.tcp_port: -1 is out of range (allowed 0..65535)"}},
		{name: "listen ip", args: []string{"-webrtc.listen_ips", "10.0.0.1,eth0"},
			want: []string{`webrtc.listen_ips[1]: "eth0" is not an IP address (allowed: an IPv4 or IPv6 literal`}},
		{name: "trusted proxy not a CIDR", args: []string{"-http.trusted_proxies", "10.0.0.0/8,proxy.local"},
			want: []string{`http.trusted_proxies[1]: "proxy.local" is neither a CIDR`}},
		{name: "per-ip exempt bad prefix", env: []string{"SLUICE_LIMITS_PER_IP_EXEMPT=10.0.0.0/33"},
			want: []string{`limits.per_ip_exempt[0]: "10.0.0.0/33" is neither a CIDR`}},
		{name: "video codec unknown", args: []string{"-webrtc.video_codecs", "h264,theora"},
			want: []string{`webrtc.video_codecs[1]: "theora" is not a video codec sluice serves (allowed: H264, H265, VP8, VP9, AV1)`}},
		{name: "video codec twice", args: []string{"-webrtc.video_codecs", "VP8,vp8"},
			want: []string{`webrtc.video_codecs[1]: "vp8" is listed twice`}},
		{name: "nat ip unspecified", env: []string{"SLUICE_WEBRTC_NAT_1TO1_IPS=0.0.0.0"},
			want: []string{`webrtc.nat_1to1_ips[0]: "0.0.0.0" is not allowed (allowed: an address peers can reach`}},
		{name: "ice url scheme", file: "webrtc:\n  ice_servers:\n    - urls: [\"http://x\"]\n",
			want: []string{`webrtc.ice_servers[0].urls[0]: "http://x" is not allowed (allowed: a URL starting with stun:, stuns:, turn: or turns:)`}},
		{name: "ice url port", file: "webrtc:\n  ice_servers:\n    - urls: [\"stun:x:y\"]\n",
			want: []string{`webrtc.ice_servers[0].urls[0]: "stun:x:y" is not a valid stun URL`}},
		{name: "ice no urls", file: "webrtc:\n  ice_servers:\n    - username: u\n",
			want: []string{"webrtc.ice_servers[0].urls: is empty (allowed: one or more URLs"}},
		{name: "turn without credential", file: "webrtc:\n  ice_servers:\n    - urls: [turn:t.example.com]\n      username: u\n",
			want: []string{"webrtc.ice_servers[0]: TURN URLs need username and credential"}},
		{name: "ice unknown key", file: "webrtc:\n  ice_servers:\n    - url: stun:x\n",
			want: []string{"sluice.yml:2: webrtc.ice_servers:", `unknown field "url"`}},
		{name: "ice bad env", env: []string{"SLUICE_WEBRTC_ICE_SERVERS=[{urls: [stun:x]"},
			want: []string{"SLUICE_WEBRTC_ICE_SERVERS: webrtc.ice_servers:", "YAML flow syntax"}},
		{name: "connect timeout", args: []string{"-webrtc.connect_timeout=500ms"},
			want: []string{"webrtc.connect_timeout: 500ms is out of range (allowed 1s..5m)"}},
		{name: "ring not power of two", args: []string{"-stream.ring_packets=1000"},
			want: []string{"stream.ring_packets: 1000 is not allowed (allowed: a power of two in 256..1048576)"}},
		{name: "ring too large", args: []string{"-stream.ring_packets=2097152"},
			want: []string{"stream.ring_packets: 2097152 is not allowed"}},
		{name: "pli interval", args: []string{"-stream.pli_min_interval=2m"},
			want: []string{"stream.pli_min_interval: 2m is out of range (allowed 100ms..1m)"}},
		{name: "ready timeout negative", args: []string{"-stream.ready_timeout=-1s"},
			want: []string{"stream.ready_timeout: -1s is out of range (allowed 0s..1m)"}},
		{name: "max sessions", args: []string{"-limits.max_sessions=0"},
			want: []string{"limits.max_sessions: 0 is out of range (allowed 1 or more)"}},
		{name: "max viewers", env: []string{"SLUICE_LIMITS_MAX_VIEWERS_PER_STREAM=-5"},
			want: []string{"limits.max_viewers_per_stream: -5 is out of range (allowed 1 or more)"}},
		{name: "hls segment count", args: []string{"-hls.segment_count=3"},
			want: []string{"hls.segment_count: 3 is out of range (allowed 7..100; LL-HLS needs at least 7)"}},
		{name: "hls part longer than segment", args: []string{"-hls.segment_duration=1s", "-hls.part_duration=2s"},
			want: []string{"hls.part_duration: 2s is out of range (allowed 20ms..1s)"}},
		{name: "record rule without dir", file: "record:\n  rules:\n    - streams: \"cam-*\"\n",
			want: []string{"record.rules[0].dir: is empty"}},
		{name: "record rule bad values", file: "record:\n  rules:\n    - {dir: /r, streams: \"[\", name: \"../%stream\", segment: 10ms, audio: mp3}\n",
			want: []string{"record.rules[0].streams:", "record.rules[0].name:", "record.rules[0].segment: 10ms is out of range", `record.rules[0].audio: "mp3" is not allowed`}},
		{name: "record rule bad size", file: "record:\n  rules:\n    - {dir: /r, max_bytes: 10XB}\n",
			want: []string{"record.rules:", "is not a size"}},
		{name: "log level", args: []string{"-log.level", "verbose"},
			want: []string{`log.level: "verbose" is not allowed (allowed: debug, info, warn, error)`}},
		{name: "log format", file: "log: {format: xml}\n",
			want: []string{`sluice.yml:1: log.format: "xml" is not allowed (allowed: text, json)`}},
		{name: "cluster without secret", args: []string{"-cluster.redis", "127.0.0.1:6379"},
			want: []string{"cluster.secret: is 0 characters (allowed: 16 or more; required with cluster.redis)"}},
		{name: "cluster bad values", args: []string{"-cluster.redis", "http://r:1", "-cluster.node_id", "a/b", "-cluster.lease_ttl", "100ms", "-cluster.capacity", "-1", "-cluster.public_url", "ftp://x", "-cluster.secret", "0123456789abcdef"},
			want: []string{`cluster.redis: "http://r:1" is not allowed`, `cluster.node_id: "a/b" is not allowed`, "cluster.lease_ttl: 100ms is out of range (allowed 1s..5m)",
				"cluster.capacity: -1 is out of range", `cluster.public_url: "ftp://x" is not allowed`}},
		{name: "cluster public url needed", args: []string{"-http.listen", ":8080", "-cluster.redis", "redis://r:6379/0", "-cluster.secret", "0123456789abcdef"},
			want: []string{`cluster.public_url: is empty and http.listen ":8080" names no host other nodes can reach`}},
		{name: "several errors joined", args: []string{"-log.level=x", "-log.format=y"},
			want: []string{"log.level:", "\n", "log.format:"}},

		{name: "unknown yaml key", file: "http:\n  listen: :1\n  lisen: :2\n",
			want: []string{`sluice.yml:3: unknown key "http.lisen" (allowed in http: listen, cors_origin, max_body_bytes, tls_cert, tls_key, read_header_timeout, read_timeout, idle_timeout, ice_servers, ice_servers_on_options, trusted_proxies)`}},
		{name: "unknown yaml section", file: "htp:\n  listen: :1\n",
			want: []string{`sluice.yml:1: unknown key "htp" (allowed at the top level: http, webrtc, stream, limits, hls, rtsp, sources, record, playback, transcode, auth, events, metrics, admin, log, cluster, rtmp, srt, forward)`}},
		{name: "section not a mapping", file: "http: 5\n",
			want: []string{"http: want a mapping of settings (listen, cors_origin, max_body_bytes, tls_cert, tls_key, read_header_timeout, read_timeout, idle_timeout, ice_servers, ice_servers_on_options, trusted_proxies)"}},
		{name: "top level not a mapping", file: "- a\n",
			want: []string{"want a mapping of sections"}},
		{name: "yaml syntax", file: "http: [\n",
			want: []string{"sluice.yml:1:"}},
		{name: "two documents", file: "http: {}\n---\nlog: {}\n",
			want: []string{"holds 2 YAML documents"}},
		{name: "missing file", args: []string{"-config", "/nonexistent/sluice.yml"},
			want: []string{"config file:", "/nonexistent/sluice.yml"}},
		{name: "yaml type", file: "webrtc:\n  udp_port: abc\n",
			want: []string{`sluice.yml:2: webrtc.udp_port: "abc" is not an integer`}},
		{name: "yaml list for scalar", file: "webrtc:\n  udp_port: [1]\n",
			want: []string{"webrtc.udp_port: want a single int value"}},
		{name: "yaml bool", file: "webrtc:\n  tcp_enabled: yes\n",
			want: []string{`webrtc.tcp_enabled: "yes" is not a boolean (allowed: true, false)`}},
		{name: "yaml duration without unit", file: "webrtc:\n  connect_timeout: 10\n",
			want: []string{`webrtc.connect_timeout: "10" is not a duration`}},

		{name: "unknown env", env: []string{"SLUICE_HTTP_LISTN=:1", "SLUICE_WEBRTC_UDP_PORT=1"},
			want: []string{"unknown environment variable SLUICE_HTTP_LISTN"}},
		{name: "env not a number", env: []string{"SLUICE_WEBRTC_UDP_PORT=x"},
			want: []string{`SLUICE_WEBRTC_UDP_PORT: webrtc.udp_port: "x" is not an integer`}},
		{name: "env int overflow", env: []string{"SLUICE_WEBRTC_UDP_PORT=99999999999999999999"},
			want: []string{"is too large"}},
		{name: "unknown flag", args: []string{"-http.lisen", ":1"},
			want: []string{"flag provided but not defined: -http.lisen", "sluice -h"}},
		{name: "flag bad duration", args: []string{"-stream.pli_min_interval", "1"},
			want: []string{`flag -stream.pli_min_interval: stream.pli_min_interval: "1" is not a duration`}},
		{name: "positional argument", args: []string{"sluice.yml"},
			want: []string{`unexpected argument "sluice.yml"`, "-config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadCase(t, tt.file, tt.args, tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestRecordRules(t *testing.T) {
	const file = `
record:
  rules:
    - streams: "cam-*"
      dir: /var/lib/sluice/rec
      name: "%stream/%Y-%m-%d_%H-%M-%S"
      segment: 10m
      max_age: 168h
      max_bytes: 10GiB
      audio: opus
`
	cfg, err := loadCase(t, file, nil, []string{})
	if err != nil {
		t.Fatal(err)
	}
	want := []record.Rule{{Streams: "cam-*", Dir: "/var/lib/sluice/rec", Name: "%stream/%Y-%m-%d_%H-%M-%S",
		Segment: 10 * time.Minute, MaxAge: 168 * time.Hour, MaxBytes: 10 << 30, Audio: "opus"}}
	if !reflect.DeepEqual(cfg.Record.Rules, want) {
		t.Fatalf("rules = %+v, want %+v", cfg.Record.Rules, want)
	}
	cfg, err = loadCase(t, "", nil, []string{`SLUICE_RECORD_RULES=[{dir: /r, max_bytes: 1048576, manual: true}]`})
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Record.Rules; len(r) != 1 || r[0].MaxBytes != 1<<20 || !r[0].Manual {
		t.Fatalf("rules from env = %+v", r)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	c := Default()
	c.WebRTC.UDPPort = 70000
	c.Log.Level = "verbose"
	err := c.Validate()
	want := "webrtc.udp_port: 70000 is out of range (allowed 0..65535)\n" +
		`log.level: "verbose" is not allowed (allowed: debug, info, warn, error)`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
}

func TestNames(t *testing.T) {
	for path, env := range map[string]string{
		"http.listen":             "SLUICE_HTTP_LISTEN",
		"webrtc.udp_port":         "SLUICE_WEBRTC_UDP_PORT",
		"webrtc.nat_1to1_ips":     "SLUICE_WEBRTC_NAT_1TO1_IPS",
		"webrtc.ice_servers":      "SLUICE_WEBRTC_ICE_SERVERS",
		"stream.pli_min_interval": "SLUICE_STREAM_PLI_MIN_INTERVAL",
	} {
		if f, ok := fieldByPath[path]; !ok || f.env() != env {
			t.Errorf("%s: env %q, want %q", path, f.env(), env)
		}
	}
	for _, f := range fields {
		if help[f.path] == "" {
			t.Errorf("%s has no help text in usage.go", f.path)
		}
	}
	if len(help) != len(fields) {
		t.Errorf("help has %d entries for %d settings", len(help), len(fields))
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out bytes.Buffer
		_, err := load([]string{arg}, nil, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		usage := out.String()
		for _, f := range fields {
			if !strings.Contains(usage, "-"+f.path+" ") || !strings.Contains(usage, "env "+f.env()+")") {
				t.Errorf("%s: usage does not list -%s with env %s", arg, f.path, f.env())
			}
		}
		for _, w := range []string{"-config path", "SLUICE_CONFIG", `(default "127.0.0.1:8080", env`,
			"(default 8189, env SLUICE_WEBRTC_UDP_PORT)", "(default 10s,", `(default "", env SLUICE_WEBRTC_LISTEN_IPS)`,
			"(default [], env SLUICE_WEBRTC_ICE_SERVERS)", "(default false,"} {
			if !strings.Contains(usage, w) {
				t.Errorf("usage does not contain %q:\n%s", w, usage)
			}
		}
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		level, format string
		want          []string
		notWant       string
	}{
		{"info", "text", []string{"level=INFO msg=shown"}, "hidden"},
		{"debug", "json", []string{`"level":"DEBUG","msg":"hidden"`, `"msg":"shown"`}, ""},
		{"error", "text", nil, "shown"},
	}
	for _, tt := range tests {
		c := Default()
		c.Log.Level, c.Log.Format = tt.level, tt.format
		var buf bytes.Buffer
		log := c.Logger(&buf)
		log.Debug("hidden")
		log.Info("shown")
		for _, w := range tt.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s/%s: output %q lacks %q", tt.level, tt.format, buf.String(), w)
			}
		}
		if tt.notWant != "" && strings.Contains(buf.String(), tt.notWant) {
			t.Errorf("%s/%s: output %q has %q", tt.level, tt.format, buf.String(), tt.notWant)
		}
	}
}

// FuzzYAMLFile feeds arbitrary file contents to the loader: it may refuse
// them, but must not panic, and what it accepts must be valid.
func FuzzYAMLFile(f *testing.F) {
	example, err := os.ReadFile("../../sluice.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"", "http: 5\n", "- a\n", "http: [\n", "webrtc:\n  ice_servers:\n    - url: x\n",
		"a: &x {listen: ':1'}\nhttp: *x\n", "http:\n  <<: {listen: ':1'}\n", "webrtc: {listen_ips: [[1]]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &loader{cfg: Default(), origin: map[string]string{}}
		l.yamlFile("fuzz.yml", data)
		if len(l.errs) == 0 && l.cfg.Validate() == nil {
			// Accepted: loading it again gives the same result.
			l2 := &loader{cfg: Default(), origin: map[string]string{}}
			l2.yamlFile("fuzz.yml", data)
			if !reflect.DeepEqual(l.cfg, l2.cfg) {
				t.Fatal("not deterministic")
			}
		}
	})
}

// TestParseSource: an API body in the shape of a YAML source entry, with
// the validator's messages naming the field.
func TestParseSource(t *testing.T) {
	s, err := ParseSource("cam", []byte(`{"url": "rtsp://192.0.2.1/x", "on_demand": true, "on_demand_close_after": "30s", "transport": "tcp"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Source{Stream: "cam", URL: "rtsp://192.0.2.1/x", OnDemand: true, OnDemandCloseAfter: 30 * time.Second, Transport: "tcp"}); s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	for _, tc := range []struct{ stream, body, want string }{
		{"cam", `{"url": "http://192.0.2.1/x"}`, "url: "},
		{"cam", `{"url": "rtsp://192.0.2.1/x", "transport": "quic"}`, "transport: "},
		{"cam", `{"url": "rtsp://192.0.2.1/x", "bogus": 1}`, "bogus"},
		{"cam", `{"url": "rtsp://192.0.2.1/x", "stream": "other"}`, "stream: "},
		{"bad name!", `{"url": "rtsp://192.0.2.1/x"}`, "stream: "},
		{"cam", `{"url": "rtsp://192.0.2.1/x", "on_demand_close_after": "5ms"}`, "on_demand_close_after: "},
	} {
		if _, err := ParseSource(tc.stream, []byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSource(%q, %s) = %v, want an error with %q", tc.stream, tc.body, err, tc.want)
		}
	}
}

func TestPrefixes(t *testing.T) {
	got, err := Prefixes([]string{"10.1.2.3/8", "192.0.2.7", "::ffff:192.0.2.8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "192.0.2.8/32", "2001:db8::/32"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("%d: %s, want %s", i, p, want[i])
		}
	}
	if _, err := Prefixes([]string{"nope"}); err == nil {
		t.Error("nope parsed")
	}
	// Empty lists load as nil: no trusted proxy, no exemption.
	cfg, err := Load([]string{"-http.trusted_proxies=", "-limits.per_ip_exempt="}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.TrustedProxies != nil || cfg.Limits.PerIPExempt != nil {
		t.Errorf("empty lists load as %q, %q", cfg.HTTP.TrustedProxies, cfg.Limits.PerIPExempt)
	}
}
