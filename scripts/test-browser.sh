#!/usr/bin/env bash
# Browser tests: the embedded pages in headless Chromium against the real
# sluice binary on loopback (test/browser/, node --test + playwright-core).
# scripts/test.sh runs this; it can also run alone. Safe to run again: it
# installs only what is missing, as root on Debian 12:
#   chromium (Debian's package; never a browser download),
#   nodejs and npm (Debian's packages) if there is no node,
#   GStreamer 1.22 (webrtcbin, x264enc, libnice) and python3-gi,
#   ffmpeg (the RTMP publisher),
#   playwright-core at the version pinned in test/browser/package-lock.json,
#   hls.js into web/vendor/ (scripts/web-deps.sh) for the LL-HLS page.
# Screenshots, the server log and timings.txt go to test/browser/out/.
# SKIP_BROWSER_TESTS=1 skips it all; CHROMIUM=/path picks another browser.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_BROWSER_TESTS:-}" = 1 ]; then
  echo "test-browser.sh: skipped (SKIP_BROWSER_TESTS=1)"
  exit 0
fi

chromium=${CHROMIUM:-/usr/bin/chromium}
need=()
if ! command -v node >/dev/null 2>&1; then
  need+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
  need+=(npm)
fi
if [ ! -x "$chromium" ]; then
  if [ -n "${CHROMIUM:-}" ]; then
    echo "test-browser.sh: CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
  fi
  need+=(chromium)
fi
# GStreamer's webrtcbin, x264enc and libnice with python3-gi, for the
# GStreamer publisher (test/browser/gst_whip.py); ffmpeg for the RTMP
# publisher (test/browser/rtmp.test.mjs).
for pkg in ffmpeg python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 \
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    need+=("$pkg")
  fi
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-browser.sh: needs ${need[*]}; run as root to install them, or SKIP_BROWSER_TESTS=1" >&2
    exit 1
  fi
  echo "test-browser.sh: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# playwright-core as package-lock.json pins it (npm ci: exactly the lock).
want=$(node -p "require('./test/browser/package-lock.json').packages['node_modules/playwright-core'].version")
have=$(node -p "try { require('./test/browser/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [ "$want" != "$have" ]; then
  echo "test-browser.sh: installing playwright-core $want"
  (cd test/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# hls.js for the pages' LL-HLS player, embedded by the build below.
./scripts/web-deps.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/sluice" ./cmd/sluice

echo "test-browser.sh: $("$chromium" --version 2>/dev/null | head -n1), node $(node --version)"
# The suites bound themselves (200 s, 120 s, 120 s, 150 s, 90 s, 90 s, 90 s, 120 s, 90 s and 90 s); timeout is the backstop for a hung browser.
status=0
BROWSER_TEST_BIN="$tmp/sluice" timeout --kill-after=10 1110 \
  node --test --test-concurrency=1 --test-reporter=spec test/browser/sluice.test.mjs test/browser/simulcast.test.mjs \
  test/browser/console.test.mjs test/browser/codecs.test.mjs test/browser/gstreamer.test.mjs \
  test/browser/audio.test.mjs test/browser/multi.test.mjs test/browser/camera.test.mjs test/browser/rtmp.test.mjs \
  test/browser/bitrate.test.mjs || status=$?
if [ -f test/browser/out/timings.txt ]; then
  echo "-- test/browser/out/timings.txt"
  cat test/browser/out/timings.txt
fi
exit "$status"
