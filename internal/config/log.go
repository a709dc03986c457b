package config

import (
	"io"
	"log/slog"
)

// Logger returns the process logger: log.level and log.format applied,
// writing to w (normally os.Stderr). An unvalidated level falls back to info.
func (c Config) Logger(w io.Writer) *slog.Logger {
	var level slog.Level // info
	if err := level.UnmarshalText([]byte(c.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
