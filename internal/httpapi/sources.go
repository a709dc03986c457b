package httpapi

import (
	"context"
	"fmt"

	"github.com/sluice-media/sluice/internal/sources"
	"github.com/sluice-media/sluice/internal/whep"
)

// Sources is the supervisor of the pulled sources (internal/sources):
// readers demand a source's stream before they look it up, and the API
// shows each source's state.
type Sources interface {
	// Demand starts an on-demand source's pull (or keeps it going) and
	// reports whether name is a source's stream.
	Demand(name string) bool
	Source(name string) (sources.State, bool)
	States() []sources.State
}

// demand is a reader's first step (a WHEP offer, an LL-HLS request): a
// source's stream that is not published yet (an on-demand pull starting,
// a camera reconnecting) is waited for up to the ready timeout.
func (a *API) demand(ctx context.Context, name string) error {
	if a.cfg.Sources == nil || !a.cfg.Sources.Demand(name) {
		return nil
	}
	if _, err := a.whep.Hub.Lookup(name); err == nil {
		return nil
	}
	timeout := a.whep.ReadyTimeout
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := a.whep.Hub.Await(wctx, name); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		why := ""
		if st, ok := a.cfg.Sources.Source(name); ok && st.LastError != "" {
			why = " (" + st.LastError + ")"
		}
		return fmt.Errorf("%w: source %q not connected within %s%s", whep.ErrNotReady, name, timeout, why)
	}
	return nil
}

// sourceOf is the state of the stream's source for the API; nil when the
// stream is not a source's.
func (a *API) sourceOf(name string) *sources.State {
	if a.cfg.Sources == nil {
		return nil
	}
	st, ok := a.cfg.Sources.Source(name)
	if !ok {
		return nil
	}
	return &st
}
