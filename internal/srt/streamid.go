package srt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-media/sluice/internal/hub"
)

// ErrBadName means the stream id names an invalid stream.
var ErrBadName = errors.New("invalid stream name")

// ErrStreamID means a caller's stream id is not one sluice reads.
var ErrStreamID = errors.New("stream id must be publish:{stream}[:{token}], read:{stream}[:{token}] or #!::r={stream},m=publish|request[,t={token}]")

// streamID is what a caller's stream id asks for.
type streamID struct {
	publish bool
	stream  string
	token   string
}

// parseStreamID reads the two forms of stream id: sluice's own
// "publish:{stream}" / "read:{stream}", each optionally with ":{token}",
// and the SRT access-control syntax "#!::r={stream},m=publish|request"
// (https://github.com/Haivision/srt/blob/master/docs/features/access-control.md),
// whose token rides in "t=" (or "s=", the session id).
func parseStreamID(raw string) (streamID, error) {
	var id streamID
	if rest, ok := strings.CutPrefix(raw, "#!::"); ok {
		mode := "request"
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return id, fmt.Errorf("%w: %q is not key=value", ErrStreamID, kv)
			}
			switch k {
			case "r":
				id.stream = v
			case "m":
				mode = v
			case "t", "s":
				id.token = v
			}
		}
		switch mode {
		case "publish":
			id.publish = true
		case "request":
		default:
			return id, fmt.Errorf("%w: mode %q", ErrStreamID, mode)
		}
	} else {
		action, rest, ok := strings.Cut(raw, ":")
		if !ok {
			return id, ErrStreamID
		}
		switch action {
		case "publish":
			id.publish = true
		case "read":
		default:
			return id, fmt.Errorf("%w: action %q", ErrStreamID, action)
		}
		id.stream, id.token, _ = strings.Cut(rest, ":")
	}
	if !hub.ValidName(id.stream) {
		return id, fmt.Errorf("%w: %.40q (%s)", ErrBadName, id.stream, hub.NameRule)
	}
	return id, nil
}
