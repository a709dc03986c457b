#!/usr/bin/env bash
# Scale test (issue 6): the real sluice binary and VIEWERS (default 500) pion
# WHEP viewers of one stream on loopback, via sluice-bench. Reports RSS per
# viewer, setup p50/p99 (POST to connected), goroutines per session, CPU per
# delivered packet and loss; fails if not every viewer connected or packets
# were lost. Bounded: sluice-bench's own timeouts, plus `timeout` overall.
# Low bit rate on purpose: on a 2-core machine the clients share the CPU with
# the server, and this test is about sessions, not packet rate.
set -euo pipefail
cd "$(dirname "$0")/.."
viewers=${VIEWERS:-500}
out=${SCALE_OUT:-$(mktemp -d)}
mkdir -p "$out"
go build -o "$out/sluice" ./cmd/sluice
go build -o "$out/sluice-bench" ./cmd/sluice-bench
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port); admin=$(port); udp=$(port)
env -u SLUICE_CONFIG "$out/sluice" -http.listen 127.0.0.1:$http -rtmp.listen 127.0.0.1:0 -srt.listen 127.0.0.1:0 -rtsp.listen 127.0.0.1:0 -rtsp.udp_rtp_port 0 -rtsp.udp_rtcp_port 0 -admin.listen 127.0.0.1:$admin \
  -webrtc.udp_port $udp -webrtc.listen_ips 127.0.0.1 -log.level warn \
  -limits.max_sessions_per_ip $((viewers + 10)) >"$out/sluice.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
timeout 170 "$out/sluice-bench" -whip "http://127.0.0.1:$http/whip/scale" -whep "http://127.0.0.1:$http/whep/scale" \
  -viewers "$viewers" -batch 50 -bitrate 150k -audio-bitrate 16k -warmup 3s -duration 5s -timeout 60s \
  -pid $pid -goroutines-url "http://127.0.0.1:$admin/metrics" -json -quiet >"$out/report.json"
python3 - "$out/report.json" "$viewers" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2])
s = r.get("server", {})
print(f"scale: {r['viewers']['connected']}/{n} viewers connected; {r['viewers'].get('setups_per_s', 0):.0f} setups/s, server {r.get('server', {}).get('cpu_ms_per_setup', 0):.1f} ms CPU per setup; setup p50 {r['setup_ms']['p50']:.0f} ms p99 {r['setup_ms']['p99']:.0f} ms; "
      f"RSS {s.get('rss_per_viewer_kb', 0):.0f} KiB/viewer; {r.get('goroutines_per_viewer', 0):.1f} goroutines/session; "
      f"{s.get('cpu_us_per_packet', 0):.2f} µs/packet; TTFF p99 {r['ttff_ms']['p99']:.0f} ms; loss {r['delivery']['loss_percent']:.3f} %")
ok = r['viewers']['connected'] == n and r['delivery']['loss_percent'] < 1.0
sys.exit(0 if ok else 1)
PY
