#!/usr/bin/env bash
# Runs sluice from source: installs what Opus→AAC transcoding needs
# (scripts/transcode-deps.sh; without it sluice runs and reports
# transcoding as unavailable) and the pages' hls.js into web/vendor/
# (scripts/web-deps.sh; without it, or offline, sluice still runs and its
# LL-HLS page falls back to the browser's own HLS), then `go run
# ./cmd/sluice` with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/transcode-deps.sh || true
if ! ./scripts/web-deps.sh; then
  echo "run.sh: hls.js not installed; the LL-HLS player needs a browser with native HLS (Safari)" >&2
fi
exec go run ./cmd/sluice "$@"
