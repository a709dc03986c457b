// Command sluice-bench loads a WHIP/WHEP server with one publisher and N
// viewers and reports what the viewers got and what the server spent.
//
//	sluice-bench -whip URL -whep URL -viewers N [flags]     one run against any server
//	sluice-bench compare -sluice BIN -mediamtx BIN [flags]  sluice vs MediaMTX on loopback
//	sluice-bench setups -whip URL -whep URL -sessions N     WHEP setup rate against any server
//
// Run "sluice-bench -h" or "sluice-bench compare -h" for the flags. The
// measuring lives in internal/bench; this file only parses flags and prints.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-media/sluice/internal/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const mediaHelp = `What the publisher sends (be aware when reading the numbers):
  video  H264 at -fps, one access unit every 1/fps, from -source:
         clip       the committed testdata clip (320x240 constrained baseline,
                    25 fps, an IDR every 25 frames, about 150 kbit/s) looped;
                    every access unit is padded with an SEI NAL unit (user data
                    unregistered) up to the mean size for -bitrate. The picture
                    stays 320x240 whatever the bit rate; -resolution must be
                    empty or 320x240.
         synthetic  generated SPS/PPS for -resolution and slices of the right
                    sizes (IDR 4x a P frame, -gop frames apart). The slice
                    headers are valid, the picture data is filler: servers
                    relay it, a decoder would not show it.
         file       an Annex-B H264 file (-file) with an access unit delimiter
                    before every access unit, looped and padded like the clip.
         Every access unit also carries a small "stamp" SEI with its index,
         which the viewers use to measure latency.
  audio  Opus, 50 packets/s: one 20 ms CELT silence frame padded to the size
         for -audio-bitrate.
Viewers are pion WHEP clients that count packets and watch sequence numbers,
keyframes and stamps; they do not decode. RTSP readers (-rtsp, or compare
-rtsp-readers) are gortsplib clients over TCP that do the same.`

// mediaFlags are the flags shared by both modes.
type mediaFlags struct {
	source, file, resolution string
	fps, gop                 int
	bitrate, audioBitrate    string
	batch                    int
	lead, warmup, duration   time.Duration
	timeout                  time.Duration
	json, quiet              bool
	cpuProfile               string
}

func (m *mediaFlags) register(fs *flag.FlagSet, warmup, duration time.Duration) {
	fs.StringVar(&m.source, "source", bench.SourceClip, "video source: clip, synthetic or file (see below)")
	fs.StringVar(&m.file, "file", "", "Annex-B H264 file for -source file (or another clip for -source clip)")
	fs.StringVar(&m.resolution, "resolution", "", "WIDTHxHEIGHT: the SPS for -source synthetic (default 1280x720); must match the clip or file otherwise")
	fs.IntVar(&m.fps, "fps", 25, "video frames per second")
	fs.IntVar(&m.gop, "gop", 0, "keyframe interval in frames for -source synthetic (default: -fps)")
	fs.StringVar(&m.bitrate, "bitrate", "2.5M", "video bit rate, e.g. 2.5M or 800k")
	fs.StringVar(&m.audioBitrate, "audio-bitrate", "32k", "Opus bit rate (packet size; 50 packets/s)")
	fs.IntVar(&m.batch, "batch", 20, "viewers joining at once; the next batch starts when the previous one is done")
	fs.DurationVar(&m.lead, "lead", 2*time.Second, "publishing time before the first viewer joins")
	fs.DurationVar(&m.warmup, "warmup", warmup, "time after the last viewer joined, before measuring")
	fs.DurationVar(&m.duration, "duration", duration, "measuring window")
	fs.DurationVar(&m.timeout, "timeout", 20*time.Second, "bound on the publisher's and each viewer's connection (retries on 404/503 included)")
	fs.BoolVar(&m.json, "json", false, "print the report as JSON on stdout instead of a table")
	fs.BoolVar(&m.quiet, "quiet", false, "no progress on stderr")
	fs.StringVar(&m.cpuProfile, "cpuprofile", "", "write this tool's own CPU profile (publisher and viewers) to the file")
}

// startProfile starts the -cpuprofile, if any; the returned func stops it.
func (m *mediaFlags) startProfile() (func(), error) {
	if m.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(m.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (m *mediaFlags) config(stderr io.Writer) (bench.Config, error) {
	vb, err := bench.ParseBitrate(m.bitrate)
	if err != nil {
		return bench.Config{}, err
	}
	ab, err := bench.ParseBitrate(m.audioBitrate)
	if err != nil {
		return bench.Config{}, err
	}
	w, h, err := bench.ParseResolution(m.resolution)
	if err != nil {
		return bench.Config{}, err
	}
	cfg := bench.Config{
		Batch: m.batch, Lead: m.lead, Warmup: m.warmup, Duration: m.duration, Timeout: m.timeout,
		Media: bench.MediaConfig{
			Source: m.source, File: m.file, Width: w, Height: h, FPS: m.fps, GOP: m.gop,
			VideoBitrate: vb, AudioBitrate: ab,
		},
	}
	if !m.quiet {
		cfg.Progress = stderr
	}
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "compare" {
		return runCompare(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "setups" {
		return runSetups(ctx, args[1:], stdout, stderr)
	}
	return runOne(ctx, args, stdout, stderr)
}

func runOne(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m mediaFlags
	m.register(fs, 5*time.Second, 10*time.Second)
	whip := fs.String("whip", "", "WHIP endpoint URL of the stream, e.g. http://127.0.0.1:8080/whip/bench")
	whep := fs.String("whep", "", "WHEP endpoint URL of the same stream, e.g. http://127.0.0.1:8080/whep/bench")
	rtspURL := fs.String("rtsp", "", "RTSP URL of the same stream (e.g. rtsp://127.0.0.1:8554/bench): the -viewers are then RTSP readers over TCP instead of WHEP viewers, and -whep is not needed")
	token := fs.String("token", "", "bearer token for the publisher and the viewers (RTSP readers send it as the password)")
	viewers := fs.Int("viewers", 10, "WHEP viewers to open, spread over the streams")
	streams := fs.Int("streams", 1, "publishers, each on its own stream: with more than one, stream i's URLs are -whip and -whep with \"-i\" appended (i from 1), or put where they say {n}")
	goURL := fs.String("goroutines-url", "", "Prometheus URL of the server (sluice: http://HOST/metrics): report its goroutines per viewer session")
	pid := fs.Int("pid", 0, "server process id on this machine: report its CPU µs per delivered packet and RSS per viewer from /proc")
	allocURL := fs.String("alloc-url", "", "where the server's bytes allocated are read, for its allocation rate: a Prometheus URL (go_memstats_alloc_bytes_total) or a Go pprof heap page (http://HOST/debug/pprof/heap?debug=1); -goroutines-url when empty")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: sluice-bench -whip URL -whep URL [flags]
       sluice-bench compare [flags]   (sluice vs MediaMTX; see compare -h)
       sluice-bench setups [flags]    (WHEP setup rate; see setups -h)

Publishes one stream to the WHIP URL, opens -viewers WHEP viewers of it in
batches, lets it run for -warmup and measures for -duration. Reports viewers
connected, setup time (POST to connected) and time to first keyframe (POST to
the first complete keyframe access unit) p50/p99, delivered packets/s and
Mbit/s, loss (sequence gaps seen by the viewers), and server-added latency
(publisher send time to viewer receive time of the same access unit, one
clock). With -pid, the server's CPU per delivered packet and RSS per viewer.
Any WHIP/WHEP server works; sluice: /whip/NAME and /whep/NAME, MediaMTX:
/NAME/whip and /NAME/whep.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s\n", mediaHelp)
	}
	if err := fs.Parse(args); err != nil {
		return usageStatus(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := m.config(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench:", err)
		return 2
	}
	cfg.WHIP, cfg.WHEP, cfg.Token, cfg.Viewers, cfg.Streams, cfg.PID = *whip, *whep, *token, *viewers, *streams, *pid
	cfg.GoroutinesURL, cfg.AllocURL = *goURL, *allocURL
	cfg.RTSP = *rtspURL
	stopProfile, err := m.startProfile()
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench:", err)
		return 1
	}
	defer stopProfile()
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRunTime())
	defer cancel()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		if perr := printReport(stdout, rep, m.json); perr != nil {
			fmt.Fprintln(stderr, "sluice-bench:", perr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench:", err)
		return 1
	}
	return 0
}

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m mediaFlags
	m.register(fs, 10*time.Second, 10*time.Second)
	sluiceBin := fs.String("sluice", "bin/sluice", "sluice binary")
	sluiceArgs := fs.String("sluice-args", "", "extra sluice flags, space-separated")
	mtxBin := fs.String("mediamtx", "bin/mediamtx", "MediaMTX binary")
	mtxCfg := fs.String("mediamtx-config", "../shared/peers/mediamtx.yml", "MediaMTX configuration to derive from (its webrtcAddress and webrtcLocalUDPAddress are replaced)")
	viewers := fs.String("viewers", "50,100,200", "viewer counts, comma-separated: one scenario each of one publisher and that many viewers")
	streams := fs.String("streams", "", "stream counts, comma-separated: one scenario each of that many publishers with one viewer each (e.g. 50)")
	setups := fs.Int("setups", 0, "WHEP sessions of the setup-rate scenario (0: none): one publisher, that many sessions each POST → connected → first RTP packet → DELETE, -setup-concurrency at a time (see sluice-bench setups -h)")
	setupConc := fs.Int("setup-concurrency", 10, "sessions in flight at once in the setup-rate scenario")
	setupMax := fs.Duration("setup-max-time", 2*time.Minute, "no setup-rate session starts after this long")
	rtspReaders := fs.String("rtsp-readers", "", "RTSP reader counts, comma-separated: one scenario each of one publisher (WHIP) and that many RTSP readers over TCP (e.g. 100); MediaMTX serves RTSP on a free port for them")
	workDir := fs.String("workdir", "", "folder for server configurations and logs (default: a new temporary folder)")
	settle := fs.Duration("settle", 30*time.Second, "before each run, wait up to this long for the machine to be quiet (see -quiet-percent)")
	quietPct := fs.Float64("quiet-percent", 15, "share of all cores busy (%) under which the machine counts as quiet")
	retries := fs.Int("retries", 1, "repeat a run this many times more when other programs took over -disturbed-percent of a core during it")
	disturbed := fs.Float64("disturbed-percent", 30, "CPU of other programs during a run (% of one core) that makes it disturbed")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: sluice-bench compare [flags]

For each viewer count, starts MediaMTX and then sluice as child processes on
free loopback ports (a fresh server per scenario), runs the same load against
each (see sluice-bench -h) with the server's PID, and prints both reports side
by side with the ratios sluice/MediaMTX of CPU µs per delivered packet, RSS
per viewer, setup p99, time to first frame p99 and latency p99. With
-setups N, also the setup-rate scenario (see sluice-bench setups -h) against
both: setups per second, server CPU per setup and setups per core-second.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s\n", mediaHelp)
	}
	if err := fs.Parse(args); err != nil {
		return usageStatus(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice-bench compare: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := m.config(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench compare:", err)
		return 2
	}
	counts, ok := countList(*viewers, bench.MaxViewers)
	if !ok {
		fmt.Fprintf(stderr, "sluice-bench compare: -viewers %q: want counts in 1..%d separated by commas\n", *viewers, bench.MaxViewers)
		return 2
	}
	streamCounts, ok := countList(*streams, bench.MaxStreams)
	if !ok {
		fmt.Fprintf(stderr, "sluice-bench compare: -streams %q: want counts in 1..%d separated by commas\n", *streams, bench.MaxStreams)
		return 2
	}
	rtspCounts, ok := countList(*rtspReaders, bench.MaxViewers)
	if !ok {
		fmt.Fprintf(stderr, "sluice-bench compare: -rtsp-readers %q: want counts in 1..%d separated by commas\n", *rtspReaders, bench.MaxViewers)
		return 2
	}
	if *setups < 0 || *setups > bench.MaxViewers || *setupConc < 1 || *setupConc > 1000 {
		fmt.Fprintf(stderr, "sluice-bench compare: -setups %d -setup-concurrency %d: want 0..%d and 1..1000\n", *setups, *setupConc, bench.MaxViewers)
		return 2
	}
	if len(counts) == 0 && len(streamCounts) == 0 && len(rtspCounts) == 0 && *setups == 0 {
		fmt.Fprintln(stderr, "sluice-bench compare: no scenario: give -viewers, -streams, -rtsp-readers or -setups")
		return 2
	}
	cc := bench.CompareConfig{
		SluiceBin: *sluiceBin, SluiceArgs: strings.Fields(*sluiceArgs),
		MediaMTXBin: *mtxBin, MediaMTXConfig: *mtxCfg,
		Viewers: counts, Streams: streamCounts, RTSPReaders: rtspCounts, Run: cfg, WorkDir: *workDir,
		Setups: *setups, SetupConcurrency: *setupConc, SetupMaxTime: *setupMax,
		Settle: *settle, QuietPercent: *quietPct, Retries: *retries, DisturbedPercent: *disturbed,
	}
	if !m.quiet {
		cc.Log = stderr
	}
	stopProfile, err := m.startProfile()
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench compare:", err)
		return 1
	}
	defer stopProfile()
	res, err := bench.Compare(ctx, cc)
	if res == nil {
		return finish(stdout, stderr, "compare", m.json, nil, err)
	}
	return finish(stdout, stderr, "compare", m.json, res, err)
}

// finish prints a mode's result, a table or with -json JSON (res nil:
// none), then its error; it returns the exit status.
func finish(stdout, stderr io.Writer, mode string, asJSON bool, res interface{ WriteTable(io.Writer) error }, err error) int {
	if res != nil {
		var perr error
		if asJSON {
			perr = writeJSON(stdout, res)
		} else {
			perr = res.WriteTable(stdout)
		}
		if perr != nil {
			fmt.Fprintln(stderr, "sluice-bench "+mode+":", perr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench "+mode+":", err)
		return 1
	}
	return 0
}

func runSetups(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench setups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m mediaFlags
	m.register(fs, 0, time.Second) // -warmup and -duration are not used here
	whip := fs.String("whip", "", "WHIP endpoint URL of the stream, e.g. http://127.0.0.1:8080/whip/bench")
	whep := fs.String("whep", "", "WHEP endpoint URL of the same stream, e.g. http://127.0.0.1:8080/whep/bench")
	token := fs.String("token", "", "bearer token for the publisher and the sessions")
	sessions := fs.Int("sessions", 200, "WHEP sessions to open and close in all")
	conc := fs.Int("concurrency", 10, "sessions in flight at once")
	baseline := fs.Duration("baseline", 3*time.Second, "window after -lead in which the server's CPU with the publisher alone is measured (taken off the sessions' CPU)")
	maxTime := fs.Duration("max-time", 2*time.Minute, "no session starts after this long")
	pid := fs.Int("pid", 0, "server process id on this machine: report its CPU per setup and RSS from /proc")
	metrics := fs.String("metrics-url", "", "Prometheus URL of the server (sluice: http://HOST/metrics): goroutines before and after, and its allocation")
	allocURL := fs.String("alloc-url", "", "where the server's bytes allocated are read: a Prometheus URL (go_memstats_alloc_bytes_total) or a Go pprof heap page (http://HOST/debug/pprof/heap?debug=1); -metrics-url when empty")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: sluice-bench setups -whip URL -whep URL [flags]

Publishes one stream to the WHIP URL, lets it run for -lead, measures the
server with the publisher alone for -baseline, then opens -sessions WHEP
sessions of it, -concurrency at a time: each one POSTs its offer, waits for
ICE and DTLS to connect and for its first RTP packet, and DELETEs. Reports
sessions completed per second, setup (POST to connected) and first-packet
p50/p99, and with -pid the server's CPU per setup less the baseline, and
setups per core-second (1000 / CPU ms per setup). -batch, -warmup and
-duration do not apply. Every session comes from this machine's address:
a sluice server's limits.max_sessions_per_ip (100 by default) must exceed
-concurrency.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s\n", mediaHelp)
	}
	if err := fs.Parse(args); err != nil {
		return usageStatus(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice-bench setups: unexpected arguments %q\n", fs.Args())
		return 2
	}
	base, err := m.config(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench setups:", err)
		return 2
	}
	cfg := bench.SetupsConfig{
		WHIP: *whip, WHEP: *whep, Token: *token, Sessions: *sessions, Concurrency: *conc,
		Lead: base.Lead, Baseline: *baseline, Timeout: base.Timeout, MaxTime: *maxTime,
		Media: base.Media, PID: *pid, MetricsURL: *metrics, AllocURL: *allocURL, Progress: base.Progress,
	}
	stopProfile, err := m.startProfile()
	if err != nil {
		fmt.Fprintln(stderr, "sluice-bench setups:", err)
		return 1
	}
	defer stopProfile()
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRunTime())
	defer cancel()
	rep, err := bench.RunSetups(ctx, cfg)
	if rep == nil {
		return finish(stdout, stderr, "setups", m.json, nil, err)
	}
	return finish(stdout, stderr, "setups", m.json, rep, err)
}

func printReport(w io.Writer, rep *bench.Report, asJSON bool) error {
	if asJSON {
		return writeJSON(w, rep)
	}
	return rep.WriteTable(w)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// usageStatus is 0 for -h, 2 for a bad flag (already reported by flag).
func usageStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// countList parses "a,b,c" into counts in 1..most; "" is none.
func countList(s string, most int) ([]int, bool) {
	if strings.TrimSpace(s) == "" {
		return nil, true
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > most {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}
