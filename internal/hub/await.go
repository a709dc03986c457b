package hub

import "context"

// Await returns the named stream once it is published, or ctx's error.
// Viewers that arrive before their publisher wait here (bounded by ctx).
func (h *Hub) Await(ctx context.Context, name string) (*Stream, error) {
	for {
		h.mu.Lock()
		s, ok := h.streams[name]
		wake := h.published
		h.mu.Unlock()
		if ok {
			return s, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
