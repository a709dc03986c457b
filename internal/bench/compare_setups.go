package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
)

// SetupsScenario is the setup-rate run against both servers.
type SetupsScenario struct {
	Sessions      int           `json:"sessions"`
	Concurrency   int           `json:"concurrency"`
	MediaMTX      *SetupsReport `json:"mediamtx,omitempty"`
	MediaMTXError string        `json:"mediamtx_error,omitempty"`
	Sluice        *SetupsReport `json:"sluice,omitempty"`
	SluiceError   string        `json:"sluice_error,omitempty"`
	Ratios        SetupsRatios  `json:"ratios_sluice_over_mediamtx"`
}

// SetupsRatios are sluice / MediaMTX; 0 when either side lacks the number.
// SetupsPerCoreS and SetupsPerS are better above 1, the others below.
type SetupsRatios struct {
	SetupsPerCoreS  float64 `json:"setups_per_core_s"`
	SetupsPerS      float64 `json:"setups_per_s"`
	CPUMsPerSetup   float64 `json:"cpu_ms_per_setup"`
	SetupP99        float64 `json:"setup_p99"`
	FirstPacketP99  float64 `json:"first_packet_p99"`
	AllocKBPerSetup float64 `json:"alloc_kb_per_setup"`
}

func setupsRatios(s, m *SetupsReport) SetupsRatios {
	if s == nil || m == nil {
		return SetupsRatios{}
	}
	div := func(a, b float64) float64 {
		if a <= 0 || b <= 0 {
			return 0
		}
		return a / b
	}
	r := SetupsRatios{
		SetupsPerS:     div(s.SetupsPerS, m.SetupsPerS),
		SetupP99:       div(s.Setup.P99, m.Setup.P99),
		FirstPacketP99: div(s.FirstPacket.P99, m.FirstPacket.P99),
	}
	if s.Server != nil && m.Server != nil {
		r.SetupsPerCoreS = div(s.Server.SetupsPerCoreS, m.Server.SetupsPerCoreS)
		r.CPUMsPerSetup = div(s.Server.CPUMsPerSetup, m.Server.CPUMsPerSetup)
		r.AllocKBPerSetup = div(s.Server.AllocKBPerSetup, m.Server.AllocKBPerSetup)
	}
	return r
}

// compareSetups runs the setups scenario, MediaMTX first, then sluice,
// each with a fresh server.
func compareSetups(ctx context.Context, cc CompareConfig, dir string, say func(string, ...any)) (*SetupsScenario, error) {
	sc := &SetupsScenario{Sessions: cc.Setups, Concurrency: cc.SetupConcurrency}
	if sc.Concurrency == 0 {
		sc.Concurrency = 10
	}
	desc := fmt.Sprintf("%d WHEP setups, %d at a time", sc.Sessions, sc.Concurrency)
	for _, side := range []string{"MediaMTX", "sluice"} {
		if ctx.Err() != nil {
			return sc, ctx.Err()
		}
		rep, err := retrying(ctx, cc, side, desc, filepath.Join(dir, side+"-setups"), say,
			func(sub string) (*SetupsReport, error) { return compareSetupsOne(ctx, cc, side, sub) },
			func(r *SetupsReport) float64 { return r.OtherCPUPercent },
			func(r *SetupsReport, busy float64, note string) {
				r.MachineBusyBeforePercent = busy
				if note != "" {
					r.Notes = append(r.Notes, note)
				}
			})
		if ctx.Err() != nil {
			return sc, ctx.Err()
		}
		msg := ""
		if err != nil {
			msg = err.Error()
			say("%s, %s: %v", side, desc, err)
		}
		if side == "MediaMTX" {
			sc.MediaMTX, sc.MediaMTXError = rep, msg
		} else {
			sc.Sluice, sc.SluiceError = rep, msg
		}
	}
	sc.Ratios = setupsRatios(sc.Sluice, sc.MediaMTX)
	return sc, nil
}

func compareSetupsOne(ctx context.Context, cc CompareConfig, side, dir string) (*SetupsReport, error) {
	var srv *serverProc
	var err error
	if side == "sluice" {
		srv, err = startSluiceProc(cc.SluiceBin, cc.SluiceArgs, dir)
	} else {
		srv, err = startMediaMTXProc(cc.MediaMTXBin, cc.MediaMTXConfig, dir, false)
	}
	if err != nil {
		return nil, err
	}
	run := cc.Run
	cfg := SetupsConfig{
		WHIP: srv.whip, WHEP: srv.whep, Token: run.Token,
		Sessions: cc.Setups, Concurrency: cc.SetupConcurrency,
		Lead: run.Lead, Timeout: run.Timeout, MaxTime: cc.SetupMaxTime,
		Media: run.Media, PID: srv.pid(), MetricsURL: srv.metrics, AllocURL: srv.alloc,
		Progress: run.Progress,
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.MaxRunTime())
	defer cancel()
	rep, err := RunSetups(rctx, cfg)
	if stopErr := srv.stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	if err != nil {
		err = fmt.Errorf("%w%s", err, srv.logTail())
	}
	return rep, err
}

// writeSetupsTable writes the setups scenario of a comparison.
func (sc *SetupsScenario) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "\nWHEP setups (one publisher; %d sessions, %d at a time, each POST → connected → first RTP packet → DELETE; server CPU less its baseline with the publisher alone)\n",
		sc.Sessions, sc.Concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tdone\tfailed\tsetups/s\tsetup p50\tsetup p99\t1st pkt p50\t1st pkt p99\tCPU ms/setup\tuser ms\tsetups/core-s\tbaseline CPU %\talloc KiB/setup\tRSS KiB before → after\tclient CPU %\tother CPU %\tksoftirqd %\t")
	for _, x := range []struct {
		name string
		r    *SetupsReport
	}{{"MediaMTX", sc.MediaMTX}, {"sluice", sc.Sluice}} {
		r := x.r
		if r == nil {
			fmt.Fprintf(tw, "%s\tfailed\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n", x.name)
			continue
		}
		cpu, user, perCore, base, alloc, rss := "-", "-", "-", "-", "-", "-"
		if s := r.Server; s != nil {
			cpu, user, perCore = fmt.Sprintf("%.2f", s.CPUMsPerSetup), fmt.Sprintf("%.2f", s.UserMsPerSetup), fmt.Sprintf("%.0f", s.SetupsPerCoreS)
			base, rss = fmt.Sprintf("%.1f", s.BaselineCPUPercent), fmt.Sprintf("%d → %d", s.RSSBeforeKB, s.RSSAfterKB)
			if s.AllocKBPerSetup != 0 {
				alloc = fmt.Sprintf("%.0f", s.AllocKBPerSetup)
			}
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t\n", x.name, r.Completed, r.Requested, r.Failed, r.SetupsPerS,
			pctl(r.Setup.N, r.Setup.P50), pctl(r.Setup.N, r.Setup.P99), pctl(r.FirstPacket.N, r.FirstPacket.P50), pctl(r.FirstPacket.N, r.FirstPacket.P99),
			cpu, user, perCore, base, alloc, rss, r.ClientCPUPercent, r.OtherCPUPercent, r.SoftirqCPUPercent)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	q := sc.Ratios
	fmt.Fprintf(w, "sluice / MediaMTX: setups per core-second %s (above 1: sluice sets up more per CPU second), setups/s %s, CPU ms/setup %s, setup p99 %s, first packet p99 %s, alloc/setup %s\n",
		ratio(q.SetupsPerCoreS), ratio(q.SetupsPerS), ratio(q.CPUMsPerSetup), ratio(q.SetupP99), ratio(q.FirstPacketP99), ratio(q.AllocKBPerSetup))
	for _, e := range []struct{ name, err string }{{"MediaMTX", sc.MediaMTXError}, {"sluice", sc.SluiceError}} {
		if e.err != "" {
			fmt.Fprintf(w, "%s, setups: %s\n", e.name, e.err)
		}
	}
	for _, x := range []struct {
		name string
		r    *SetupsReport
	}{{"MediaMTX", sc.MediaMTX}, {"sluice", sc.Sluice}} {
		if x.r != nil && len(x.r.Errors) > 0 {
			fmt.Fprintf(w, "%s, setups: session errors: %v\n", x.name, sortedErrors(x.r.Errors))
		}
	}
	return nil
}
