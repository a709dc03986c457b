#!/usr/bin/env bash
# Installs what audio transcoding (Opus⇄AAC, G.711) needs (Debian, as root, idempotent):
# internal/transcode compiles against libavcodec's headers with cgo (gcc)
# and opens libopus, libavcodec and libswresample at run time. Without them sluice still
# builds and runs and reports transcoding as unavailable (LL-HLS and
# recordings then carry no AAC audio). scripts/run.sh and scripts/test.sh
# run it. Exits 1 when the packages are still missing afterwards.
set -euo pipefail
pkgs="gcc libc6-dev libavcodec-dev libswresample-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing$missing"
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
  # Go's build cache does not track system headers: forget packages built without them.
  go clean -cache
  exit 0
fi
echo "transcode-deps.sh: Opus→AAC transcoding unavailable: install$missing (apt-get, as root)" >&2
exit 1
