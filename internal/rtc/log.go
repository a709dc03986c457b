package rtc

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/pion/logging"
)

// slogWriter routes pion's own log lines (errors only) into slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn("pion", "msg", strings.TrimSpace(string(b)))
	return len(b), nil
}

// sharedLoggers hands out one logger per scope ("ice", "dtls", ...) for
// every PeerConnection: pion asks for about ten per connection, and the
// default factory builds each anew, a few kilobytes per viewer for loggers
// that print nothing below errors.
type sharedLoggers struct {
	base *logging.DefaultLoggerFactory
	mu   sync.Mutex
	byID map[string]logging.LeveledLogger
}

func newSharedLoggers(log *slog.Logger) *sharedLoggers {
	base := logging.NewDefaultLoggerFactory()
	base.DefaultLogLevel = logging.LogLevelError
	base.Writer = slogWriter{log}
	return &sharedLoggers{base: base, byID: make(map[string]logging.LeveledLogger)}
}

// NewLogger implements logging.LoggerFactory.
func (f *sharedLoggers) NewLogger(scope string) logging.LeveledLogger {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byID[scope]
	if !ok {
		l = f.base.NewLogger(scope)
		f.byID[scope] = l
	}
	return l
}
