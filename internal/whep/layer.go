package whep

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/sluice-media/sluice/internal/hub"
)

// ErrNoLayer means a viewer asked for a simulcast layer the stream does
// not have.
var ErrNoLayer = errors.New("no such simulcast layer")

// Layer choice. A viewer of a simulcast stream gets, by default, the
// highest layer that its bandwidth estimate (bandwidth.go) carries; a
// layer above the current one must fit with upHeadroom to spare. A layer
// left because of loss is not tried again for a back-off that doubles
// (backoffMin .. backoffMax) while tries keep failing within
// stableAfter. When not even the lowest layer fits, or, without
// simulcast, the stream itself does not, the viewer gets keyframes only
// until it fits again: a congested viewer costs its link little and
// nobody else anything. A viewer may pin a layer instead (SetLayer).
const (
	upHeadroom = 1.15
	// starveShare: a viewer goes keyframes-only when its estimate falls
	// below this share of the lowest rate it could get (repeated loss).
	starveShare = 0.8
	backoffMin  = 2 * time.Second
	backoffMax  = 16 * time.Second
	stableAfter = 10 * time.Second
	// capHeadroom bounds the estimate above the highest layer (or the
	// stream) so that it can fall quickly when loss comes.
	capHeadroom = 1.5
	capExtra    = 100_000
)

// Layer names a viewer may pin, besides a RID.
const (
	LayerAuto = "auto"
	LayerLow  = "low"
	LayerMid  = "mid"
	LayerHigh = "high"
)

// keyOnlyTrack is the back-off key of "every frame" for keyframes-only.
const keyOnlyTrack = -2

var ridSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)

// CheckLayer checks the syntax of a layer name (query parameter, API).
func CheckLayer(name string) error {
	switch name {
	case "", LayerAuto, LayerLow, LayerMid, LayerHigh:
		return nil
	}
	if !ridSyntax.MatchString(name) {
		return fmt.Errorf("%w: %q is not auto, low, mid, high or a RID", ErrNoLayer, name)
	}
	return nil
}

// layerControl chooses what one viewer gets of the stream's video. Its
// inputs come from the viewer's RTCP goroutines; its output is a decision
// word the forwarding worker applies to the cursor.
type layerControl struct {
	st     layerSource
	leader int // hub index of the simulcast video group; -1 without simulcast

	mu       sync.Mutex
	est      *estimator
	pin      string
	cur      int // track decided; -1 none yet
	keyOnly  bool
	fullRate float64 // without simulcast: the send rate with every frame
	upAt     time.Time
	blocked  map[int]time.Time
	backoff  map[int]time.Duration

	decision atomic.Uint64 // see pack
}

// layerSource is what the control reads of the stream (hub.Stream).
type layerSource interface {
	Layers(track int) []hub.Layer
}

func newLayerControl(st layerSource, leader int) *layerControl {
	return &layerControl{st: st, leader: leader, est: newEstimator(), cur: -1,
		blocked: map[int]time.Time{}, backoff: map[int]time.Duration{}}
}

// pack makes a decision word: the layer's track (or -1), keyframes only,
// and a bit that says it is set.
func pack(track int, keyOnly bool) uint64 {
	d := uint64(uint32(int32(track))) | 1<<33
	if keyOnly {
		d |= 1 << 32
	}
	return d
}

func unpack(d uint64) (track int, keyOnly, ok bool) {
	return int(int32(uint32(d))), d&(1<<32) != 0, d&(1<<33) != 0
}

// start makes the first choice, from the start estimate.
func (lc *layerControl) start(now time.Time) {
	lc.mu.Lock()
	lc.decide(now)
	lc.mu.Unlock()
}

// feedback takes a viewer's RTCP: the packets unmarshalled and what its
// TWCC feedback counted; sentBytes is the session's payload byte counter
// and videoSSRC its video SSRC.
func (lc *layerControl) feedback(pkts []rtcp.Packet, tw twccCount, videoSSRC uint32, sentBytes uint64, now time.Time) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	changed := tw.total > 0 && lc.est.twcc(tw.lost, tw.total, sentBytes, now)
	if lc.est.rtcp(pkts, videoSSRC, sentBytes, now) || changed {
		lc.decide(now)
	}
}

// setPin pins a layer ("" or auto: none); it fails for a RID the stream
// does not have.
func (lc *layerControl) setPin(name string, now time.Time) error {
	if err := CheckLayer(name); err != nil {
		return err
	}
	if name == LayerAuto {
		name = ""
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if name != "" && !isRankName(name) {
		if lc.leader < 0 {
			return fmt.Errorf("%w: %q (the stream has no simulcast)", ErrNoLayer, name)
		}
		found := false
		for _, l := range lc.st.Layers(lc.leader) {
			found = found || l.RID == name
		}
		if !found {
			return fmt.Errorf("%w: %q", ErrNoLayer, name)
		}
	}
	lc.pin = name
	lc.decide(now)
	return nil
}

func isRankName(n string) bool { return n == LayerLow || n == LayerMid || n == LayerHigh }

// decide makes the choice from the estimate and the layers' bit rates.
// Called with mu held.
func (lc *layerControl) decide(now time.Time) {
	if lc.leader < 0 {
		lc.decideSingle(now)
		return
	}
	layers := lc.st.Layers(lc.leader)
	active := layers
	for len(active) > 0 && active[0].Bitrate == 0 {
		active = active[1:]
	}
	if lc.pin != "" {
		if t, ok := pinned(lc.pin, layers, active); ok {
			lc.set(t, false, now)
		}
		return
	}
	if len(active) == 0 {
		return // nothing measured yet: the leader stays
	}
	lc.est.cap = capHeadroom*float64(active[len(active)-1].Bitrate) + capExtra
	est := lc.est.estimate(now)
	curRank := -1
	for i, l := range active {
		if l.Track == lc.cur {
			curRank = i
		}
	}
	choice := 0
	for i, l := range active {
		need := float64(l.Bitrate)
		if i > curRank {
			need *= upHeadroom
		}
		if need <= est && !now.Before(lc.blocked[l.Track]) {
			choice = i
		}
	}
	keyOnly := lc.starved(float64(active[0].Bitrate), lc.keyOnly, est, now)
	if choice < curRank {
		lc.block(lc.cur, now)
	}
	lc.set(active[choice].Track, keyOnly && choice == 0, now)
}

// decideSingle is decide for a stream without simulcast: every frame, or
// keyframes only. Called with mu held.
func (lc *layerControl) decideSingle(now time.Time) {
	if !lc.keyOnly && lc.est.sendRate > 0 {
		lc.fullRate = lc.est.sendRate
	}
	if lc.fullRate == 0 {
		return
	}
	lc.est.cap = capHeadroom*lc.fullRate + capExtra
	lc.set(-1, lc.starved(lc.fullRate, lc.keyOnly, lc.est.estimate(now), now), now)
}

// starved reports whether a viewer sending rate goes keyframes-only: it
// does when the estimate falls below starveShare of rate, and stays so
// until the rate fits with headroom and the back-off has passed.
func (lc *layerControl) starved(rate float64, keyOnly bool, est float64, now time.Time) bool {
	if !keyOnly {
		return rate*starveShare > est
	}
	return rate*upHeadroom > est || now.Before(lc.blocked[keyOnlyTrack])
}

// set records a decision; going down starts a back-off. Called with mu
// held.
func (lc *layerControl) set(track int, keyOnly bool, now time.Time) {
	if keyOnly && !lc.keyOnly {
		lc.block(keyOnlyTrack, now)
	}
	if track != lc.cur || keyOnly != lc.keyOnly {
		lc.upAt = now
	}
	lc.cur, lc.keyOnly = track, keyOnly
	lc.decision.Store(pack(track, keyOnly))
}

// block keeps the viewer off track (a layer it leaves, or keyOnlyTrack)
// for a back-off that doubles when the last try was short-lived.
func (lc *layerControl) block(track int, now time.Time) {
	bo := backoffMin
	if now.Sub(lc.upAt) < stableAfter {
		if prev := lc.backoff[track]; prev > 0 {
			bo = min(2*prev, backoffMax)
		}
	}
	lc.backoff[track] = bo
	lc.blocked[track] = now.Add(bo)
}

// pinned resolves a pinned name against the layers (all, ranked) and the
// active ones among them.
func pinned(name string, layers, active []hub.Layer) (int, bool) {
	if !isRankName(name) {
		for _, l := range layers {
			if l.RID == name {
				return l.Track, true
			}
		}
		return 0, false
	}
	set := active
	if len(set) == 0 {
		set = layers
	}
	if len(set) == 0 {
		return 0, false
	}
	switch name {
	case LayerLow:
		return set[0].Track, true
	case LayerMid:
		return set[len(set)/2].Track, true
	default:
		return set[len(set)-1].Track, true
	}
}

// state is what the control says for the API.
func (lc *layerControl) state(now time.Time) (pin string, estimate int64, keyOnly bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.pin, int64(lc.est.estimate(now)), lc.keyOnly
}

// applyLayer gives the newest decision to the cursor. Only the cursor's
// reader calls it (the worker, or start before the worker has the
// session).
func (s *Session) applyLayer() {
	if s.layers == nil {
		return
	}
	d := s.layers.decision.Load()
	if d == s.applied {
		return
	}
	s.applied = d
	track, keyOnly, ok := unpack(d)
	if !ok {
		return
	}
	if track >= 0 {
		s.cursor.SetLayer(track)
	}
	s.cursor.SetKeyframesOnly(keyOnly)
	s.noteSwitches(true)
}

// noteSwitches publishes the layer being sent after the cursor switched
// (or, with force, in any case).
func (s *Session) noteSwitches(force bool) {
	if s.layers == nil || s.layers.leader < 0 {
		return
	}
	if n := s.cursor.Switches(); n != s.switches || force {
		s.switches = n
		if cur, _, ok := s.cursor.Layer(s.layers.leader); ok {
			s.curTrack.Store(int32(cur))
		}
	}
}

// videoSSRC is the SSRC the viewer's video goes out with.
func (s *Session) videoSSRC() uint32 {
	if s.video == nil {
		return 0
	}
	if b := s.video.bound.Load(); b != nil {
		return b.ssrc
	}
	return 0
}

// SetLayer pins the simulcast layer the viewer gets: low, mid or high (by
// bit rate), a RID, or auto (the default: chosen by bandwidth). The
// switch happens at the layer's next keyframe. Without simulcast, low,
// mid, high and auto are accepted and change nothing.
func (s *Session) SetLayer(name string) error {
	if s.layers == nil {
		if err := CheckLayer(name); err != nil {
			return err
		}
		if name != "" && name != LayerAuto && !isRankName(name) {
			return fmt.Errorf("%w: %q (the stream has no video)", ErrNoLayer, name)
		}
		return nil
	}
	// The worker applies it with the stream's next packet.
	return s.layers.setPin(name, time.Now())
}

// LayerState is what a viewer gets of a simulcast stream's video.
type LayerState struct {
	Simulcast     bool
	Layers        []hub.Layer // ranked, lowest bit rate first
	Current       string      // RID of the layer being sent
	Pinned        string      // "" when chosen by bandwidth
	Estimate      int64       // the viewer's estimated bandwidth, bits per second
	KeyframesOnly bool
}

// Layer reports the viewer's layer, pin and bandwidth estimate.
func (s *Session) Layer() LayerState {
	if s.layers == nil {
		return LayerState{}
	}
	var st LayerState
	st.Pinned, st.Estimate, st.KeyframesOnly = s.layers.state(time.Now())
	if s.layers.leader < 0 {
		return st
	}
	st.Simulcast = true
	st.Layers = s.stream.Layers(s.layers.leader)
	cur := int(s.curTrack.Load())
	for _, l := range st.Layers {
		if l.Track == cur {
			st.Current = l.RID
		}
	}
	return st
}
