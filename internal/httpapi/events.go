package httpapi

import (
	"errors"

	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/rtc"
)

// sessionStarted announces a new publisher or viewer.
func (a *API) sessionStarted(e *entry) {
	k := events.ViewerJoined
	if e.kind == "whip" {
		k = events.StreamPublished
	}
	a.bus.Publish(events.Event{Kind: k, Stream: e.stream, Session: e.session.ID(), Remote: e.remote})
}

// sessionEnded announces the end of a session; one that ended by failure
// (timeout, ICE failure) is announced as failed first, with the reason.
func (a *API) sessionEnded(e *entry, reason error) {
	if e == nil || e.session == nil {
		return
	}
	ev := events.Event{Stream: e.stream, Session: e.session.ID(), Remote: e.remote}
	if reason != nil {
		ev.Reason = reason.Error()
	}
	if failed(reason) {
		ev.Kind = events.SessionFailed
		a.bus.Publish(ev)
	}
	ev.Kind = events.ViewerLeft
	if e.kind == "whip" {
		ev.Kind = events.StreamUnpublished
	}
	a.bus.Publish(ev)
}

// failed tells a failure from an orderly end (DELETE, the peer closing,
// the publisher leaving, shutdown).
func failed(reason error) bool {
	return reason != nil && !errors.Is(reason, rtc.ErrClosed) && !errors.Is(reason, hub.ErrEnded) &&
		!errors.Is(reason, hub.ErrCodecChanged) &&
		!errors.Is(reason, errKicked)
}
