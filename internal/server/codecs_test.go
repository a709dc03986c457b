package server

import (
	"testing"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/rtc"
)

// TestVideoCodecNames: webrtc.video_codecs accepts exactly the video
// codecs rtc.SelectIngest serves (config cannot import rtc, so it keeps its
// own list).
func TestVideoCodecNames(t *testing.T) {
	cfg := config.Default()
	cfg.WebRTC.VideoCodecs = rtc.VideoCodecs
	if err := cfg.Validate(); err != nil {
		t.Errorf("rtc.VideoCodecs %v: %v", rtc.VideoCodecs, err)
	}
	cfg.WebRTC.VideoCodecs = []string{"MPEG2"}
	if err := cfg.Validate(); err == nil {
		t.Error("MPEG2 accepted")
	}
}
