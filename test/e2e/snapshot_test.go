package e2e

import (
	"bytes"
	"context"
	"image/jpeg"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/snapshot"
)

// TestSnapshot publishes the H264 clip with pion and reads the stream's
// snapshot: a JPEG of the clip's size (320x240); an unknown stream is 404.
func TestSnapshot(t *testing.T) {
	if err := snapshot.Available(); err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_TRANSCODE") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/snap", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	<-f.sentAU(clipGOP / 2)

	code, body := httpGet(t, base+"/v1/streams/snap/snapshot.jpg")
	if code != http.StatusOK {
		t.Fatalf("snapshot: %d %s", code, body)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("snapshot is not a JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Errorf("snapshot %v, want 320x240", b)
	}
	if code, body := httpGet(t, base+"/v1/streams/nope/snapshot.jpg"); code != http.StatusNotFound {
		t.Errorf("snapshot of no stream: %d %s, want 404", code, body)
	}
}

// TestSnapshotNoVideo: a live stream without video (a pion publisher of
// Opus alone) has no picture to show: 503 with the reason, whether or not
// this binary can decode.
func TestSnapshotNoVideo(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/voice", client.PublishOptions{NoVideo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	fctx, stop := context.WithCancel(ctx)
	feed := looseFeed(fctx, pub, loadClip(t)) // its video writes fail: no video track
	defer func() { stop(); <-feed }()
	for {
		if code, _ := httpGet(t, base+"/v1/streams/voice"); code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the audio-only stream never went live")
		case <-time.After(50 * time.Millisecond):
		}
	}
	code, body := httpGet(t, base+"/v1/streams/voice/snapshot.jpg")
	want := snapshot.ErrNoVideo.Error()
	if snapshot.Available() != nil {
		want = snapshot.ErrUnavailable.Error()
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), want) {
		t.Errorf("snapshot of an audio-only stream: %d %q, want 503 saying %q", code, body, want)
	}
}
