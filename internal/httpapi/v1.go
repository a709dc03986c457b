package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/forward"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/sources"
)

// The JSON API (/v1): streams and sessions for operators and dashboards.
// Every call needs the "api" action; calls about one stream are authorised
// for that stream, the rest server-wide (empty stream name).

type trackInfo struct {
	Kind      string `json:"kind"`
	Codec     string `json:"codec"`
	ClockRate uint32 `json:"clock_rate"`
	Channels  uint16 `json:"channels,omitempty"`
	Fmtp      string `json:"fmtp,omitempty"`
	// Simulcast layers, lowest bit rate first (layer.go).
	Layers []layerDetail `json:"layers,omitempty"`
	// Transcode, on a track that other codecs are derived from: "opus"
	// (the derived codecs), or why none can be ("unavailable: …": the
	// libraries missing; WebRTC viewers then get video only).
	Transcode string `json:"transcode,omitempty"`
	// DerivedFrom is the index of the track a derived (transcoded) track
	// is made from.
	DerivedFrom *int `json:"derived_from,omitempty"`
	// Video is what the track's parameter sets say (size, profile).
	Video *media.VideoInfo `json:"video,omitempty"`
}

type streamInfo struct {
	Name      string       `json:"name"`
	Tracks    []trackInfo  `json:"tracks"`
	Viewers   int          `json:"viewers"`
	Publisher *sessionInfo `json:"publisher,omitempty"`
	Started   time.Time    `json:"started,omitzero"`
	UptimeSec float64      `json:"uptime_seconds"`
	// IngestedBytes counts the RTP payload bytes taken in: two readings
	// give the bit rate.
	IngestedBytes uint64 `json:"ingested_bytes"`
	// Recording says whether the stream is being recorded now.
	Recording bool `json:"recording"`
	// Live is false for a source's stream that is not published now (an
	// on-demand source nobody reads, a camera that is down).
	Live   bool           `json:"live"`
	Source *sources.State `json:"source,omitempty"`
	// Origin is how the stream comes in; absent while its publisher is
	// away (the reconnect grace) or when it cannot say.
	Origin *originInfo `json:"origin,omitempty"`
	// Forwards are the stream's forward targets (restreaming).
	Forwards []forward.Target `json:"forwards,omitempty"`
}

// Forwards is what the API reads of the forwarder.
type Forwards interface {
	Targets(stream string) []forward.Target
}

// originInfo is how a stream comes in: its protocol (whip, rtsp, rtsps,
// rtmp, srt: what the publisher names), from where, and whether sluice
// pulls it (a configured source) rather than being sent it.
type originInfo struct {
	Protocol string `json:"protocol"`
	Remote   string `json:"remote,omitempty"`
	Pulled   bool   `json:"pulled,omitempty"`
}

// A publisher other than a WHIP session (RTSP, pulled sources, ...) says
// how the stream comes in with these optional methods.
type (
	protocolNamer interface{ Protocol() string }
	remoteNamer   interface{ Remote() string }
)

type sessionInfo struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // whip, rtmp-publish, srt-publish (publishers); whep, rtmp-read, srt-read (viewers)
	Stream    string    `json:"stream"`
	Remote    string    `json:"remote"`
	State     string    `json:"state"` // new, connecting, connected, disconnected, failed, closed
	Created   time.Time `json:"created"`
	UptimeSec float64   `json:"uptime_seconds"`
	// RTPPath is how a viewer's RTP leaves, or a WHIP publisher's comes
	// in: "direct" (sluice's own SRTP path) or "pion"; empty for other
	// publishers.
	RTPPath string `json:"rtp_path,omitempty"`
	// Detached: a viewer whose PeerConnection sluice closed after the
	// handshake, its ICE consent, RTCP and DTLS close handled by sluice.
	Detached bool `json:"detached,omitempty"`
}

func (a *API) routeV1(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/streams", a.listStreams)
	mux.HandleFunc("GET /v1/streams/{stream}", a.getStream)
	mux.HandleFunc("GET /v1/sessions", a.listSessions)
	mux.HandleFunc("DELETE /v1/sessions/{session}", a.kickSession)
	a.routeLayer(mux)
}

// authorizeAPI checks the api action for one stream ("" = server-wide).
func (a *API) authorizeAPI(w http.ResponseWriter, r *http.Request, stream string) bool {
	if err := a.authz.Authorize(r.Context(), auth.NewRequest(r, auth.ActionAPI, stream)); err != nil {
		a.fail(w, r, "api", stream, err)
		return false
	}
	return true
}

func (a *API) listStreams(w http.ResponseWriter, r *http.Request) {
	if !a.authorizeAPI(w, r, "") {
		return
	}
	streams := a.whep.Hub.Streams()
	out := make([]streamInfo, 0, len(streams))
	live := make(map[string]bool, len(streams))
	for _, s := range streams {
		out = append(out, a.streamInfo(s))
		live[s.Name()] = true
	}
	if a.cfg.Sources != nil {
		for _, src := range a.cfg.Sources.States() {
			if !live[src.Stream] {
				out = append(out, idleSource(src))
			}
		}
	}
	slices.SortFunc(out, func(x, y streamInfo) int { return strings.Compare(x.Name, y.Name) })
	writeJSON(w, http.StatusOK, map[string]any{"streams": out})
}

func (a *API) getStream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	s, err := a.whep.Hub.Lookup(name)
	if err != nil {
		if src := a.sourceOf(name); src != nil {
			writeJSON(w, http.StatusOK, idleSource(*src))
			return
		}
		a.fail(w, r, "api", name, err)
		return
	}
	writeJSON(w, http.StatusOK, a.streamInfo(s))
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	if !a.authorizeAPI(w, r, "") {
		return
	}
	all := a.sessions.all()
	out := make([]sessionInfo, 0, len(all))
	for _, e := range all {
		out = append(out, sessionInfoOf(e))
	}
	if a.cfg.Edges != nil {
		for _, e := range a.cfg.Edges.Sessions() {
			out = append(out, edgeInfo(e))
		}
	}
	slices.SortFunc(out, func(x, y sessionInfo) int { return x.Created.Compare(y.Created) })
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// kickSession ends a session on an operator's request.
func (a *API) kickSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	e := a.sessions.byIDOnly(id)
	if e == nil && a.kickEdge(w, r, id) {
		return
	}
	stream := ""
	if e != nil {
		stream = e.stream
	}
	if !a.authorizeAPI(w, r, stream) {
		return
	}
	if e == nil {
		a.fail(w, r, "api", "", fmt.Errorf("%w: %s", errNoSession, id))
		return
	}
	a.log.Info("session kicked", "stream", e.stream, "session", id, "remote", e.remote, "by", r.RemoteAddr)
	e.session.Close(errKicked)
	writeJSON(w, http.StatusOK, sessionInfoOf(e))
}

func (a *API) streamInfo(s *hub.Stream) streamInfo {
	info := streamInfo{Name: s.Name(), Viewers: s.Viewers(), Started: s.Started().UTC(),
		UptimeSec: time.Since(s.Started()).Seconds(), Tracks: []trackInfo{}, Live: true, Source: a.sourceOf(s.Name())}
	tracks := s.Tracks()
	for _, t := range tracks {
		ti := trackInfo{Kind: t.Codec.Kind().String(), Codec: t.Codec.Name(),
			ClockRate: t.Codec.ClockRate, Channels: t.Codec.Channels, Fmtp: t.Codec.Fmtp, Layers: layerDetails(s.Layers(t.Index)),
			Transcode: t.DeriveErr}
		if t.Derived {
			ti.DerivedFrom = &t.Source
		}
		for _, d := range tracks {
			if d.Derived && d.Source == t.Index {
				ti.Transcode = strings.TrimPrefix(ti.Transcode+", "+strings.ToLower(d.Codec.Name()), ", ")
			}
		}
		if v, ok := s.VideoInfo(t.Index); ok {
			ti.Video = &v
		}
		info.Tracks = append(info.Tracks, ti)
	}
	_, info.IngestedBytes = s.Ingested()
	if a.cfg.Recordings != nil {
		info.Recording = a.cfg.Recordings.Status(s.Name()).Recording
	}
	if e := a.sessions.publisher(s.Name()); e != nil {
		p := sessionInfoOf(e)
		info.Publisher = &p
		info.Origin = &originInfo{Protocol: e.kind, Remote: e.remote}
	} else if pub, ok := s.Publisher().(protocolNamer); ok {
		info.Origin = &originInfo{Protocol: pub.Protocol()}
		if r, ok := pub.(remoteNamer); ok {
			info.Origin.Remote = r.Remote()
		}
	}
	if info.Origin != nil {
		info.Origin.Pulled = info.Source != nil
	}
	if a.cfg.Edges != nil && info.Publisher == nil {
		if e, ok := a.cfg.Edges.Publisher(s.Name()); ok {
			p := edgeInfo(e)
			info.Publisher = &p
		}
	}
	if a.cfg.Forwards != nil {
		info.Forwards = a.cfg.Forwards.Targets(s.Name())
	}
	return info
}

// idleSource is a source's stream that is not published now.
func idleSource(src sources.State) streamInfo {
	return streamInfo{Name: src.Stream, Tracks: []trackInfo{}, Source: &src}
}

func sessionInfoOf(e *entry) sessionInfo {
	state := webrtc.PeerConnectionStateClosed
	if v, ok := e.session.(interface {
		ConnectionState() webrtc.PeerConnectionState
	}); ok {
		state = v.ConnectionState()
	} else if pc := e.session.PeerConnection(); pc != nil {
		state = pc.ConnectionState()
	}
	info := sessionInfo{ID: e.session.ID(), Kind: e.kind, Stream: e.stream, Remote: e.remote,
		State: state.String(), Created: e.created.UTC(), UptimeSec: time.Since(e.created).Seconds()}
	if v, ok := e.session.(interface{ RTPPath() string }); ok {
		info.RTPPath = v.RTPPath()
	}
	if v, ok := e.session.(liteICE); ok {
		info.Detached = v.Detached()
	}
	return info
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
