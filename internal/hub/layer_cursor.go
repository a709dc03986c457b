package hub

// A cursor delivers one layer of each simulcast group: cur. SetLayer names
// another one (want); the cursor goes on delivering cur until want's next
// keyframe, then delivers want from that keyframe on, so that the viewer's
// decoder never gets a frame it cannot decode and never waits without
// frames. The first packet of the new layer is marked restart, which makes
// the viewer's sequence numbers continue across the switch.

// cursorGroup is a cursor's choice within one simulcast group.
type cursorGroup struct {
	leader  int   // the group's index in Tracks
	layers  []int // track indexes
	cur     int   // track delivered now
	want    int   // track to switch to at its next keyframe; cur when settled
	started bool  // a packet of the group was delivered
}

// initGroups finds the simulcast groups among the cursor's tracks. Every
// group starts on its leader (what Tracks lists, and what server-side
// consumers such as LL-HLS read).
func (c *Cursor) initGroups() {
	for i, t := range c.tracks {
		c.per[i].group = -1
		if t.group == nil {
			continue
		}
		gi := -1
		for k := range c.groups {
			if c.groups[k].leader == t.group.leader {
				gi = k
			}
		}
		if gi < 0 {
			gi = len(c.groups)
			c.groups = append(c.groups, cursorGroup{leader: t.group.leader, cur: t.group.leader, want: t.group.leader})
		}
		c.groups[gi].layers = append(c.groups[gi].layers, i)
		c.per[i].group = gi
	}
}

// selected reports whether track i is delivered: not a simulcast layer, or
// its group's current one.
func (c *Cursor) selected(i int) bool {
	g := c.per[i].group
	return g < 0 || c.groups[g].cur == i
}

// settleGroups makes every pending switch happen now; the caller then
// waits for a keyframe of every video track anyway.
func (c *Cursor) settleGroups() {
	for k := range c.groups {
		c.groups[k].cur = c.groups[k].want
	}
}

// SetLayer makes the cursor deliver track (a simulcast layer, see
// Stream.Layers) instead of the other layers of its group, from the
// layer's next keyframe on. A cursor that has delivered nothing of the
// group yet switches at once. Only the cursor's reader may call it; it
// reports false if track is not a layer the cursor knows.
func (c *Cursor) SetLayer(track int) bool {
	if track < 0 || track >= len(c.per) || c.per[track].group < 0 {
		return false
	}
	g := &c.groups[c.per[track].group]
	switch {
	case track == g.want:
	case track == g.cur:
		g.want = track // cancel the pending switch
	case !g.started:
		g.cur, g.want = track, track
		ct := &c.per[track]
		ct.waitKey, ct.waitFrom, ct.restart = true, c.pos, true
	default:
		g.want = track
		ct := &c.per[track]
		ct.waitKey, ct.waitFrom = true, c.pos
		c.s.RequestTrackKeyframe(track)
	}
	return true
}

// Layer returns the layer the cursor delivers of the group whose leader
// is track, and the one it is switching to (the same when settled).
func (c *Cursor) Layer(leader int) (cur, want int, ok bool) {
	for _, g := range c.groups {
		if g.leader == leader {
			return g.cur, g.want, true
		}
	}
	return 0, 0, false
}

// SetKeyframesOnly makes the cursor deliver only the keyframes of its
// video tracks (on), or every frame again from the next keyframe (off):
// for a viewer whose link cannot carry the stream. It asks the publisher
// for nothing while on. Only the cursor's reader may call it.
func (c *Cursor) SetKeyframesOnly(on bool) {
	// On: frames already begun are finished, the wait for a keyframe
	// follows their marker. Off: tracks waiting for a keyframe ask for one.
	c.keyOnly = on
}

// KeyframesOnly reports whether the cursor delivers keyframes only.
func (c *Cursor) KeyframesOnly() bool { return c.keyOnly }

// Switches is how many layer switches the cursor has made.
func (c *Cursor) Switches() uint64 { return c.switches.Load() }
