#!/usr/bin/env bash
# Builds MediaMTX for the interop test (test/e2e TestMediaMTXPullsFromSluice)
# once per source archive and caches it, then prints the binary's path.
#
#   scripts/build-mediamtx.sh            # build if needed, print the path
#   scripts/build-mediamtx.sh --path     # print the path only (exit 1 if not built)
#
# The binary lives at $(go env GOCACHE)/sluice-mediamtx/<sha256 of the
# archive, 16 hex digits>/mediamtx, so repeated runs are instant and a new
# archive gets a new build. The build itself is ../shared/peers/build-mediamtx.sh
# and needs the Go module proxy; without it this script fails and the test
# skips with the reason. SLUICE_TEST_PEERS overrides the peers folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${SLUICE_TEST_PEERS:-$root/../shared/peers}
archive=$(ls "$peers"/mediamtx-*.tar.gz 2>/dev/null | head -n 1 || true)
if [ -z "$archive" ] || [ ! -x "$peers/build-mediamtx.sh" ]; then
  echo "build-mediamtx.sh: no MediaMTX source archive or build script in $peers" >&2
  exit 1
fi
key=$(sha256sum "$archive" | cut -c1-16)
dir="$(go env GOCACHE)/sluice-mediamtx/$key"
bin="$dir/mediamtx"
if [ "${1:-}" = "--path" ]; then
  [ -x "$bin" ] || exit 1
  echo "$bin"
  exit 0
fi
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  # Build under a temporary name and rename, so that a concurrent or
  # interrupted build never leaves a half-written binary at $bin.
  tmp="$dir/mediamtx.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  "$peers/build-mediamtx.sh" "$tmp" >&2
  mv -f "$tmp" "$bin"
fi
echo "$bin"
