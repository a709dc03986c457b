#!/usr/bin/env bash
# The whole test suite, as README.md documents it. Safe to run again: it
# installs only what is missing. Needs Go (official toolchain) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
  echo "test.sh: Go is not on PATH (install it from https://go.dev/dl/ and add /usr/local/go/bin to PATH)" >&2
  exit 1
fi

# --- tools the scripts use (curl, python3, git) -------------------------
tools_missing=""
for p in curl python3 git; do command -v "$p" >/dev/null 2>&1 || tools_missing="$tools_missing $p"; done
if [ -n "$tools_missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing$tools_missing"
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $tools_missing ca-certificates >/dev/null
fi

# --- Opus->AAC transcoding libraries (issue 7) --------------------------
# Installed when missing (scripts/transcode-deps.sh), and then the
# transcoding tests are required to run and pass.
if ./scripts/transcode-deps.sh; then
  export SLUICE_TEST_REQUIRE_TRANSCODE=1
else
  echo "test.sh: transcoding tests will skip" >&2
fi
# --- end of transcoding libraries ---------------------------------------

# --- ffmpeg/ffprobe for the LL-HLS and recording tests (issue 7) --------
# The end-to-end tests check HLS segments and recordings with ffprobe;
# without it they skip and say why. Here it is installed (Debian, as
# root) when missing, and then required.
if ! dpkg -s ffmpeg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing ffmpeg"
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg >/dev/null
fi
if command -v ffprobe >/dev/null 2>&1; then
  export SLUICE_TEST_REQUIRE_FFPROBE=1
else
  echo "test.sh: the HLS and recording checks that need ffprobe will skip: install ffmpeg (apt-get, as root)" >&2
fi
# --- end of ffmpeg -------------------------------------------------------

# --- redis-server for the cluster tests (issue 12) -----------------------
# The cluster registry and end-to-end tests start their own redis-server on
# a random loopback port; installed here when missing, and then required.
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing redis-server"
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server >/dev/null
fi
export SLUICE_TEST_REQUIRE_REDIS=1
# --- end of redis-server --------------------------------------------------

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== MediaMTX for the interop test"
# Built from ../shared/peers with Go modules from the proxy, cached by hash;
# without it (no proxy, no peers folder) the interop test skips and says why.
./scripts/build-mediamtx.sh >/dev/null 2>&1 || echo "test.sh: MediaMTX not built; the interop test will skip" >&2

echo "== go test -race"
# -race over everything: the hub, the sessions and the end-to-end tests run
# real goroutines against each other.
go test -race -count=1 -timeout 12m ./...

echo "== allocation tests without -race"
# The race detector makes sync.Pool drop items on purpose, so counts of
# allocations per packet are only meaningful in a normal build.
go test -count=1 -run 'AllocatesNothing' ./internal/rtc/ ./internal/whep/

echo "== benchmarks compile and run once"
go test -run '^$' -bench . -benchtime 1x -count=1 ./internal/rtc/ ./internal/hub/ ./internal/codec/ ./internal/transcode/ ./internal/hls/ >/dev/null

echo "== scale test (500 WHEP viewers)"
# About 15-30 s on 2 cores; SKIP_SCALE_TEST=1 skips it.
if [ -z "${SKIP_SCALE_TEST:-}" ]; then ./scripts/scale-test.sh; fi

# --- browser tests (issue 10) -------------------------------------------
# The embedded pages in headless Chromium against the real binary. Installs
# chromium, Node.js/npm and playwright-core when missing (as root);
# SKIP_BROWSER_TESTS=1 skips them. See scripts/test-browser.sh.
echo "== browser tests"
./scripts/test-browser.sh
# --- end of browser tests -----------------------------------------------

echo "test.sh: all passed"
