package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/whep"
)

// Simulcast layer of a viewer: GET reports it, POST {"layer": "low"} pins
// one (low, mid, high, a RID, or auto to let bandwidth choose). The WHEP
// POST takes the same names as ?layer=.

// layered is what a WHEP session offers for layer choice (whep.Session).
type layered interface {
	SetLayer(name string) error
	Layer() whep.LayerState
}

type layerInfo struct {
	Session       string        `json:"session"`
	Simulcast     bool          `json:"simulcast"`
	Layers        []layerDetail `json:"layers"`
	Current       string        `json:"current,omitempty"` // RID being sent
	Pinned        string        `json:"pinned"`            // "auto" when chosen by bandwidth
	EstimateBps   int64         `json:"estimate_bps"`
	KeyframesOnly bool          `json:"keyframes_only"`
}

type layerDetail struct {
	RID        string `json:"rid"`
	BitrateBps int64  `json:"bitrate_bps"`
}

func (a *API) routeLayer(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/sessions/{session}/layer", a.getLayer)
	mux.HandleFunc("POST /v1/sessions/{session}/layer", a.setLayer)
}

// layeredSession finds a viewer session by id and authorises the call for
// its stream; it has answered when ok is false.
func (a *API) layeredSession(w http.ResponseWriter, r *http.Request) (id, stream string, l layered, ok bool) {
	id = r.PathValue("session")
	e := a.sessions.byIDOnly(id)
	if e != nil {
		stream = e.stream
	}
	if !a.authorizeAPI(w, r, stream) {
		return id, stream, nil, false
	}
	if e != nil {
		l, _ = e.session.(layered)
	}
	if l == nil {
		a.fail(w, r, "api", stream, fmt.Errorf("%w: %s is not a viewer session", errNoSession, id))
		return id, stream, nil, false
	}
	return id, stream, l, true
}

func (a *API) getLayer(w http.ResponseWriter, r *http.Request) {
	if id, _, l, ok := a.layeredSession(w, r); ok {
		writeJSON(w, http.StatusOK, layerInfoOf(id, l.Layer()))
	}
}

func (a *API) setLayer(w http.ResponseWriter, r *http.Request) {
	id, stream, l, ok := a.layeredSession(w, r)
	if !ok {
		return
	}
	body, err := a.readBody(w, r, "application/json")
	if err != nil {
		a.fail(w, r, "api", stream, err)
		return
	}
	var req struct {
		Layer *string `json:"layer"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Layer == nil {
		a.fail(w, r, "api", stream, fmt.Errorf(`%w: want {"layer": "low|mid|high|auto|<rid>"}`, errBadJSON))
		return
	}
	if err := l.SetLayer(*req.Layer); err != nil {
		a.fail(w, r, "api", stream, err)
		return
	}
	a.log.Info("viewer layer set", "stream", stream, "session", id, "layer", *req.Layer, "by", r.RemoteAddr)
	writeJSON(w, http.StatusOK, layerInfoOf(id, l.Layer()))
}

func layerInfoOf(id string, st whep.LayerState) layerInfo {
	info := layerInfo{Session: id, Simulcast: st.Simulcast, Layers: []layerDetail{}, Current: st.Current,
		Pinned: st.Pinned, EstimateBps: st.Estimate, KeyframesOnly: st.KeyframesOnly}
	if info.Pinned == "" {
		info.Pinned = whep.LayerAuto
	}
	info.Layers = append(info.Layers, layerDetails(st.Layers)...)
	return info
}

func layerDetails(layers []hub.Layer) []layerDetail {
	var out []layerDetail
	for _, l := range layers {
		out = append(out, layerDetail{RID: l.RID, BitrateBps: l.Bitrate})
	}
	return out
}
