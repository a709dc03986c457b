package rtc

import (
	"log/slog"
	"strings"
)

// slogWriter routes pion's own log lines (errors only) into slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn("pion", "msg", strings.TrimSpace(string(b)))
	return len(b), nil
}
