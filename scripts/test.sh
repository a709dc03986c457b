#!/usr/bin/env bash
# The whole test suite, as README.md documents it. Safe to run again: it
# installs only what is missing. Needs Go (official toolchain) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
  echo "test.sh: Go is not on PATH (install it from https://go.dev/dl/ and add /usr/local/go/bin to PATH)" >&2
  exit 1
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
# -race over everything: the hub, the sessions and the end-to-end tests run
# real goroutines against each other.
go test -race -count=1 -timeout 12m ./...

echo "== benchmarks compile and run once"
go test -run '^$' -bench . -benchtime 1x -count=1 ./internal/hub/ ./internal/codec/ >/dev/null

echo "test.sh: all passed"
