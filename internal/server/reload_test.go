package server

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// TestChangedSettings: the settings a reload cannot apply are named by
// their yaml paths; sources and auth, which it applies, are not.
func TestChangedSettings(t *testing.T) {
	old := config.Default()
	cur := config.Default()
	if got := changedSettings(old, cur); len(got) != 0 {
		t.Errorf("no change: %v", got)
	}
	cur.Sources = []config.Source{{Stream: "cam", URL: "rtsp://192.0.2.1/x"}}
	cur.Auth = auth.Config{Default: auth.ModeDeny}
	if got := changedSettings(old, cur); len(got) != 0 {
		t.Errorf("sources and auth changed: %v, want nothing named", got)
	}
	cur.HLS.SegmentCount = 9
	cur.Stream.ReconnectGrace = time.Minute
	cur.Record.Rules = []record.Rule{{Dir: "/tmp/x"}} // applied by Reload
	want := []string{"stream.reconnect_grace", "hls.segment_count"}
	if got := changedSettings(old, cur); !slices.Equal(got, want) {
		t.Errorf("changed %v, want %v", got, want)
	}
}
