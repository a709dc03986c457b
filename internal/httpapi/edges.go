package httpapi

import (
	"net/http"
	"time"

	"github.com/sluice-media/sluice/internal/edge"
)

// EdgeSessions are the sessions of the RTMP and SRT edges (an
// *edge.Table): /v1/sessions lists them beside WHIP and WHEP, a publisher
// among them is its stream's publisher in /v1/streams, DELETE
// /v1/sessions/{id} and a takeover end them.
type EdgeSessions interface {
	Sessions() []edge.Session
	Get(id string) (edge.Session, bool)
	Publisher(stream string) (edge.Session, bool)
	Kick(id string) bool
	KickPublisher(stream string) bool
}

// edgeInfo is an RTMP or SRT session in the API's form: a TCP or SRT
// connection is "connected" while it is listed.
func edgeInfo(s edge.Session) sessionInfo {
	return sessionInfo{ID: s.ID, Kind: s.Kind, Stream: s.Stream, Remote: s.Remote, State: "connected",
		Created: s.Created.UTC(), UptimeSec: time.Since(s.Created).Seconds()}
}

// KickPublisher ends the stream's WHIP publisher, or its RTMP or SRT one,
// for a new publisher that takes the stream over (stream.publisher_takeover);
// it reports whether there was one.
func (a *API) KickPublisher(stream string) bool {
	if old := a.sessions.publisher(stream); old != nil {
		a.log.Info("publisher taken over", "stream", stream, "session", old.session.ID())
		old.session.Close(nil)
		return true
	}
	if a.cfg.Edges != nil {
		if s, ok := a.cfg.Edges.Publisher(stream); ok {
			a.log.Info("publisher taken over", "stream", stream, "session", s.ID)
			return a.cfg.Edges.Kick(s.ID)
		}
	}
	return false
}

// kickEdge ends an RTMP or SRT session on an operator's request; false if
// id is none of theirs.
func (a *API) kickEdge(w http.ResponseWriter, r *http.Request, id string) bool {
	if a.cfg.Edges == nil {
		return false
	}
	s, ok := a.cfg.Edges.Get(id)
	if !ok {
		return false
	}
	if !a.authorizeAPI(w, r, s.Stream) {
		return true
	}
	a.log.Info("session kicked", "stream", s.Stream, "session", id, "remote", s.Remote, "by", r.RemoteAddr)
	a.cfg.Edges.Kick(id)
	writeJSON(w, http.StatusOK, edgeInfo(s))
	return true
}
