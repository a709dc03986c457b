package server

import (
	"context"
	"log/slog"
	"net/url"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/rtc"
	"github.com/sluice-media/sluice/internal/rtsp"
	"github.com/sluice-media/sluice/internal/sources"
	"github.com/sluice-media/sluice/internal/wheppull"
)

// startSources starts the supervisor of the configured sources (pulled
// with the RTSP edge's client, or a WHEP session for whep:// URLs); it runs without sources too, for those
// added by a reload or the API.
func startSources(cfg config.Config, h *hub.Hub, engine *rtc.Engine, m *metrics.Metrics, log *slog.Logger) *sources.Supervisor {
	in := ingestOptions(cfg.Stream)
	sup := sources.New(sources.Config{
		Sources: sourceList(cfg.Sources),
		Pull: func(ctx context.Context, s sources.Source, connected, switched func(string)) error {
			if u, err := url.Parse(s.URL); err == nil && (u.Scheme == "whep" || u.Scheme == "wheps") {
				return wheppull.Pull(ctx, h, wheppull.PullConfig{Stream: s.Stream, URL: s.URL, Peers: engine,
					ConnectTimeout: cfg.WebRTC.ConnectTimeout, Ingest: in}, connected)
			}
			return rtsp.Pull(ctx, h, rtsp.PullConfig{Stream: s.Stream, URL: s.URL, Transport: s.Transport, Ingest: in},
				connected, switched)
		},
		Readers: func(stream string) int {
			st, err := h.Lookup(stream)
			if err != nil {
				return 0
			}
			return st.Viewers()
		},
		Log: log,
	})
	m.SetSources(func() []metrics.Source {
		states := sup.States()
		out := make([]metrics.Source, len(states))
		for i, st := range states {
			out[i] = metrics.Source{Stream: st.Stream, Connected: st.State == sources.StateConnected, Reconnects: st.Reconnects}
		}
		return out
	})
	return sup
}
