# Build and benchmark helpers. The tests and CI use ./scripts/test.sh; this
# file only adds the comparison with MediaMTX (docs/PERFORMANCE.md).

GO ?= go
# Scenarios of bench-compare: one publisher at BITRATE, each count of viewers;
# STREAMS publishers, each with one viewer; and one publisher with each count
# of RTSP_READERS RTSP readers over TCP (empty: none).
VIEWERS ?= 50,100,200
STREAMS ?= 50
RTSP_READERS ?= 100
# The setup-rate scenario: SETUPS WHEP sessions (POST → connected → first
# packet → DELETE), SETUP_CONCURRENCY at a time, with one publisher (0: none).
SETUPS ?= 300
SETUP_CONCURRENCY ?= 10
BITRATE ?= 2.5M
WARMUP ?= 10s
DURATION ?= 10s
BATCH ?= 20
# More sluice-bench flags, e.g. BENCH_FLAGS='-source synthetic -resolution 1280x720'.
BENCH_FLAGS ?=
PEERS ?= ../shared/peers

.PHONY: sluice sluice-bench mediamtx bench-compare bench-setups

# Always rebuilt: go build is incremental and knows the dependencies.
sluice:
	$(GO) build -o bin/sluice ./cmd/sluice

sluice-bench:
	$(GO) build -o bin/sluice-bench ./cmd/sluice-bench

mediamtx: bin/mediamtx

# Built once from the source archive in $(PEERS) (delete bin/mediamtx to
# rebuild); scripts/build-mediamtx.sh caches the build per archive in the Go
# build cache when it is there.
bin/mediamtx:
	@mkdir -p bin
	@if [ -x scripts/build-mediamtx.sh ]; then \
		cp "$$(SLUICE_TEST_PEERS=$(PEERS) scripts/build-mediamtx.sh)" $@; \
	else \
		$(PEERS)/build-mediamtx.sh $@; \
	fi

bench-compare: sluice sluice-bench mediamtx
	bin/sluice-bench compare -sluice bin/sluice -mediamtx bin/mediamtx \
		-mediamtx-config $(PEERS)/mediamtx.yml -viewers $(VIEWERS) -streams "$(STREAMS)" -rtsp-readers "$(RTSP_READERS)" -bitrate $(BITRATE) \
		-warmup $(WARMUP) -duration $(DURATION) -batch $(BATCH) \
		-setups $(SETUPS) -setup-concurrency $(SETUP_CONCURRENCY) $(BENCH_FLAGS)

# The setup-rate scenario alone: WHEP setups per second and per core-second,
# sluice against MediaMTX in one run.
bench-setups: sluice sluice-bench mediamtx
	bin/sluice-bench compare -sluice bin/sluice -mediamtx bin/mediamtx \
		-mediamtx-config $(PEERS)/mediamtx.yml -viewers "" -bitrate $(BITRATE) \
		-setups $(SETUPS) -setup-concurrency $(SETUP_CONCURRENCY) $(BENCH_FLAGS)

# Scale test (issue 6): VIEWERS=500 pion viewers of one stream against the
# real binary; prints RSS per viewer, setup p50/p99 and goroutines per session.
.PHONY: scale
scale:
	VIEWERS=$(or $(SCALE_VIEWERS),500) ./scripts/scale-test.sh
