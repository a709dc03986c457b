package hub

import "time"

// Started is when the stream was first published.
func (s *Stream) Started() time.Time { return s.started }
