#!/usr/bin/env bash
# Installs the embedded pages' third-party browser code into web/vendor/,
# where go:embed picks it up at build time: hls.js at the version pinned in
# web/deps/package-lock.json (npm ci: exactly the lock, integrity checked).
# Idempotent and quick when it is already there. Installs Debian's nodejs
# and npm when there is no npm (as root). scripts/run.sh and
# scripts/test-browser.sh run it; run it before `go build` to have an
# LL-HLS player for every browser in the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "web-deps.sh: needs npm (Debian: apt-get install nodejs npm) to install hls.js" >&2
    exit 1
  fi
  echo "web-deps.sh: installing nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends nodejs npm
fi

want=$(node -p "require('./web/deps/package-lock.json').packages['node_modules/hls.js'].version")
have=$(node -p "try { require('./web/deps/node_modules/hls.js/package.json').version } catch (e) { '' }")
if [ "$want" != "$have" ]; then
  echo "web-deps.sh: installing hls.js $want"
  (cd web/deps && npm ci --no-audit --no-fund --loglevel=error)
fi
dist=web/deps/node_modules/hls.js
if ! cmp -s "$dist/dist/hls.min.mjs" web/vendor/hls.min.mjs || ! cmp -s "$dist/LICENSE" web/vendor/hls.js.LICENSE.txt; then
  cp "$dist/dist/hls.min.mjs" web/vendor/hls.min.mjs
  cp "$dist/LICENSE" web/vendor/hls.js.LICENSE.txt
  echo "web-deps.sh: web/vendor/hls.min.mjs is hls.js $want"
fi
