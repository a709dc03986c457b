package bench

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one Run. Times are in milliseconds, rates per
// second over the measuring window.
type Report struct {
	Date time.Time `json:"date"`
	WHIP string    `json:"whip"`
	WHEP string    `json:"whep"`
	// RTSP is the readers' URL when they were RTSP readers (Config.RTSP).
	RTSP string `json:"rtsp,omitempty"`

	Media   MediaReport   `json:"media"`
	Viewers ViewerReport  `json:"viewers"`
	Streams StreamsReport `json:"streams"`
	// AllocBytesPerS is the server's heap allocation rate in the window
	// (Config.AllocURL).
	AllocBytesPerS float64 `json:"alloc_bytes_per_s,omitempty"`
	// GoroutinesPerViewer is the server's goroutine growth per connected
	// viewer (with Config.GoroutinesURL).
	GoroutinesPerViewer float64 `json:"goroutines_per_viewer,omitempty"`
	// WarmupS and MeasureS are the windows as they ran, in seconds.
	WarmupS  float64 `json:"warmup_s"`
	MeasureS float64 `json:"measure_s"`

	// Setup is the time from a viewer's WHEP POST to its PeerConnection
	// reaching "connected", over the connected viewers.
	Setup Percentiles `json:"setup_ms"`
	// TTFF is the time from the POST to the first complete keyframe access
	// unit (SPS seen, IDR, every packet from the first to the marker),
	// over the viewers that got one.
	TTFF Percentiles `json:"ttff_ms"`
	// Latency is what the server and the loopback path add: viewer receive
	// time minus publisher send time of the packet that starts each
	// access unit's stamp SEI, over every viewer, in the window.
	Latency Percentiles `json:"latency_ms"`

	Delivery DeliveryReport `json:"delivery"`
	// ClientCPUPercent is this process's CPU (publisher and viewers) in
	// the window, in % of one core: near the machine's core count × 100
	// minus the server's, the clients are the limit, not the server.
	ClientCPUPercent float64 `json:"client_cpu_percent"`
	// MachineCPUPercent is every CPU's busy time in the window (/proc/stat),
	// in % of one core; what the client and the server do not account for
	// is other load, or kernel work such as loopback delivery in softirq.
	MachineCPUPercent float64 `json:"machine_cpu_percent"`
	// UDPRcvbufErrors counts datagrams the kernel dropped in the window
	// because a UDP socket's receive buffer was full: machine-wide, so it
	// includes other programs, but on loopback it tells loss in the
	// receivers from loss in the server.
	UDPRcvbufErrors uint64 `json:"udp_rcvbuf_errors"`
	// OtherCPUPercent is MachineCPUPercent minus the client's and the
	// server's: other programs, and kernel work no process is charged for.
	// Above a few tens of percent, the run was disturbed.
	OtherCPUPercent float64 `json:"other_cpu_percent"`
	// SoftirqCPUPercent is the part of OtherCPUPercent the kernel's
	// ksoftirqd threads ran: softirq work (such as the loopback receive
	// path) deferred from the system calls that raised it, often the
	// server's sends, but charged to no process of the run.
	SoftirqCPUPercent float64 `json:"softirq_cpu_percent"`
	// MachineBusyBeforePercent is the share of all cores busy in the
	// second before the run started (set by Compare).
	MachineBusyBeforePercent float64 `json:"machine_busy_before_percent,omitempty"`
	// Server is filled when a server PID was given.
	Server *ServerReport `json:"server,omitempty"`
	Notes  []string      `json:"notes,omitempty"`
}

// StreamsReport is the publishers' side: how many streams, what the server
// took in, and per stream when there are several.
type StreamsReport struct {
	Count int `json:"count"`
	// IngestedPacketsPerS is every publisher's RTP packets per second.
	IngestedPacketsPerS float64 `json:"ingested_packets_per_s"`
	// RSSPerPublisherKB is the server's RSS growth from before the first
	// publisher to after the lead, over the publishers (with a PID).
	RSSPerPublisherKB float64 `json:"rss_per_publisher_kb,omitempty"`
	// RSSPerStreamKB is the server's RSS growth from before the first
	// publisher to the end of the warm-up (every viewer joined, buffers
	// filled), over the streams: what a stream with its viewers holds.
	RSSPerStreamKB float64        `json:"rss_per_stream_kb,omitempty"`
	PerStream      []StreamReport `json:"per_stream,omitempty"`
}

// StreamReport is one stream of a run with several.
type StreamReport struct {
	WHIP                 string  `json:"whip"`
	Viewers              int     `json:"viewers"`
	SentPacketsPerS      float64 `json:"sent_packets_per_s"`
	DeliveredPacketsPerS float64 `json:"delivered_packets_per_s"`
	LossPercent          float64 `json:"loss_percent"`
}

// MediaReport says what each publisher sent (the mean over streams).
type MediaReport struct {
	Source          string  `json:"source"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	FPS             int     `json:"fps"`
	TargetVideoKbps float64 `json:"target_video_kbps"`
	// SentVideoKbps counts H264 NAL unit bytes sent in the window.
	SentVideoKbps float64 `json:"sent_video_kbps"`
	// SentPacketsPerS counts RTP packets, video and audio, in the window.
	SentPacketsPerS float64 `json:"sent_packets_per_s"`
}

// ViewerReport counts the viewers.
type ViewerReport struct {
	Requested int `json:"requested"`
	Connected int `json:"connected"`
	Failed    int `json:"failed"`
	// EndedEarly counts viewers whose connection ended before the window
	// closed.
	EndedEarly int `json:"ended_early"`
	// WithKeyframe counts viewers that completed a keyframe access unit.
	WithKeyframe int `json:"with_keyframe"`
	// Errors counts failures by message (at most 10 kinds).
	Errors map[string]int `json:"errors,omitempty"`
	// SetupsPerS is the viewers connected per second of the whole join
	// phase (first POST to the last batch done). The viewers share this
	// machine with the server, so it is a lower bound of the server's rate.
	SetupsPerS float64 `json:"setups_per_s"`
}

// DeliveryReport sums what all viewers received in the window.
type DeliveryReport struct {
	PacketsPerS float64 `json:"packets_per_s"`
	// Mbps counts RTP header and payload bytes, without SRTP, UDP and IP.
	Mbps float64 `json:"mbps"`
	// Ratio is packets delivered / (packets sent × viewers connected). A
	// server that re-packetizes may send a different number of packets.
	Ratio float64 `json:"ratio"`
	// Expected and Lost come from the viewers' sequence numbers
	// (highest - previous highest, minus packets received), video and audio.
	Expected    int64   `json:"expected"`
	Lost        int64   `json:"lost"`
	LossPercent float64 `json:"loss_percent"`
	// Stamps counts stamped access units that viewers received in the window.
	Stamps int `json:"stamps"`
}

// ServerReport is the server's CPU and memory from /proc/<pid>.
type ServerReport struct {
	PID int `json:"pid"`
	// CPUUsPerPacket is utime+stime in the window over packets delivered.
	CPUUsPerPacket float64 `json:"cpu_us_per_packet"`
	// CPUUsPerIngestedPacket is the same over packets the publishers sent.
	CPUUsPerIngestedPacket float64 `json:"cpu_us_per_ingested_packet"`
	// UserUsPerPacket and SystemUsPerPacket split it: utime (the server's
	// own code) and stime (the kernel on its behalf; on loopback that
	// includes delivering each packet to the receiving socket).
	UserUsPerPacket   float64 `json:"user_us_per_packet"`
	SystemUsPerPacket float64 `json:"system_us_per_packet"`
	// CPUPercent is of one core.
	CPUPercent  float64 `json:"cpu_percent"`
	RSSBeforeKB int64   `json:"rss_before_kb"`
	RSSAfterKB  int64   `json:"rss_after_kb"`
	// RSSPerViewerKB is (after - before) / viewers connected; "after" is
	// read at the end of the warm-up, with every viewer connected.
	RSSPerViewerKB float64 `json:"rss_per_viewer_kb"`
	// CPUMsPerSetup is the server's CPU time during the join phase over
	// the viewers connected: an upper bound of what one setup costs (it
	// includes forwarding media to the viewers already connected).
	CPUMsPerSetup float64 `json:"cpu_ms_per_setup"`
}

// Percentiles summarises samples in milliseconds (nearest rank).
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return Percentiles{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (p Percentiles) String() string {
	if p.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s / %s  (n=%d)", fmtMS(p.P50), fmtMS(p.P99), fmtMS(p.Max), p.N)
}

func fmtMS(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// WriteTable writes the report as an aligned, readable table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	if r.RTSP != "" {
		row("target", "%s → %s (RTSP readers over TCP)", r.WHIP, r.RTSP)
	} else {
		row("target", "%s → %s", r.WHIP, r.WHEP)
	}
	row("media", "%s", r.Media.Source)
	row("sent", "%.0f kbit/s video (target %.0f), %.0f RTP packets/s, %d fps", r.Media.SentVideoKbps, r.Media.TargetVideoKbps, r.Media.SentPacketsPerS, r.Media.FPS)
	if st := r.Streams; st.Count > 1 {
		row("streams", "%d publishers (sent is per stream), %.0f RTP packets/s ingested in all", st.Count, st.IngestedPacketsPerS)
		for _, p := range st.PerStream {
			row("  stream", "%s: %d viewers, %.0f packets/s sent, %.0f delivered, loss %.3f %%", p.WHIP, p.Viewers, p.SentPacketsPerS, p.DeliveredPacketsPerS, p.LossPercent)
		}
	}
	row("viewers", "%d of %d connected, %d failed, %d ended early, %d got a keyframe", r.Viewers.Connected, r.Viewers.Requested, r.Viewers.Failed, r.Viewers.EndedEarly, r.Viewers.WithKeyframe)
	row("setup rate", "%.0f viewers/s (join phase, batches of the -batch size)", r.Viewers.SetupsPerS)
	for _, e := range sortedErrors(r.Viewers.Errors) {
		row("  error", "%s", e)
	}
	row("window", "%.1f s warm-up, %.1f s measured", r.WarmupS, r.MeasureS)
	row("setup p50/p99/max", "%s", r.Setup)
	row("TTFF p50/p99/max", "%s", r.TTFF)
	row("delivered", "%.0f packets/s, %.1f Mbit/s, ratio %.4f", r.Delivery.PacketsPerS, r.Delivery.Mbps, r.Delivery.Ratio)
	row("loss", "%.3f %% (%d of %d by sequence number)", r.Delivery.LossPercent, r.Delivery.Lost, r.Delivery.Expected)
	row("latency p50/p99/max", "%s", r.Latency)
	row("client CPU", "%.1f %% of a core (this process: publisher and viewers)", r.ClientCPUPercent)
	row("machine CPU", "%.1f %% of a core busy in all (%d cores; %.0f %% not the client's or the server's, %.0f %% of it ksoftirqd), %d UDP receive-buffer drops",
		r.MachineCPUPercent, runtime.NumCPU(), r.OtherCPUPercent, r.SoftirqCPUPercent, r.UDPRcvbufErrors)
	if s := r.Server; s != nil {
		row("server CPU", "%.2f µs/packet (user %.2f, kernel %.2f), %.1f %% of a core (pid %d)", s.CPUUsPerPacket, s.UserUsPerPacket, s.SystemUsPerPacket, s.CPUPercent, s.PID)
		row("server RSS", "%.0f KiB/viewer (%d → %d KiB)", s.RSSPerViewerKB, s.RSSBeforeKB, s.RSSAfterKB)
		row("server CPU per setup", "%.1f ms (join phase CPU / viewers, media to earlier viewers included)", s.CPUMsPerSetup)
		row("server CPU in", "%.2f µs per ingested packet", s.CPUUsPerIngestedPacket)
		if r.Streams.RSSPerPublisherKB != 0 {
			row("server RSS in", "%.0f KiB/publisher (before the first publisher → after the lead), %.0f KiB/stream (→ after the warm-up, viewers included)",
				r.Streams.RSSPerPublisherKB, r.Streams.RSSPerStreamKB)
		}
	}
	if r.AllocBytesPerS > 0 {
		row("server allocation", "%.2f MB/s (go_memstats_alloc_bytes_total)", r.AllocBytesPerS/1e6)
	}
	if r.GoroutinesPerViewer > 0 {
		row("server goroutines", "%.1f per viewer session", r.GoroutinesPerViewer)
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	return tw.Flush()
}

func sortedErrors(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for e, n := range m {
		out = append(out, fmt.Sprintf("%d× %s", n, e))
	}
	slices.Sort(out)
	return out
}

// shortError keeps error kinds few: the first line, at most 160 bytes.
func shortError(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
