#!/usr/bin/env bash
# Runs sluice from source: installs the pages' hls.js into web/vendor/
# (scripts/web-deps.sh; without it, or offline, sluice still runs and its
# LL-HLS page falls back to the browser's own HLS), then `go run
# ./cmd/sluice` with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ./scripts/web-deps.sh; then
  echo "run.sh: hls.js not installed; the LL-HLS player needs a browser with native HLS (Safari)" >&2
fi
exec go run ./cmd/sluice "$@"
