package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// TestPlaybackAuth: playback is the read action on the stream. A 3 s
// recording of a stream under a static token rule: without a token or
// with an unknown one → 401, with a token that may not read → 403, with
// a read token as Bearer or as ?token= (what a <video> can send) → 200
// and an MP4 that ffprobe reads as the H264 span asked for.
func TestPlaybackAuth(t *testing.T) {
	bin := needFFprobe(t)
	const (
		ownerToken = "playback-owner-token-0123456789"
		readToken  = "playback-read-token-0123456789"
		apiToken   = "playback-api-token-0123456789"
	)
	dir := t.TempDir()
	base := startServer(t, func(c *config.Config) {
		c.Auth = auth.Config{Default: auth.ModeAllow, Rules: []auth.RuleConfig{
			{Streams: "secret-*", Mode: auth.ModeStatic, Tokens: []auth.StaticToken{
				{Token: ownerToken, Actions: []string{"publish", "read", "api"}},
				{Token: readToken, Actions: []string{"read"}},
				{Token: apiToken, Actions: []string{"api"}},
			}},
		}}
		c.Record.Rules = []record.Rule{{Streams: "secret-*", Dir: dir, Segment: 10 * time.Second}}
		c.Stream.ReconnectGrace = 0 // the file closes when the publisher leaves
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/secret-cam", client.PublishOptions{Token: ownerToken})
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed(pub, loadClip(t), 3*clipGOP)
	go f.run(ctx)
	<-f.done
	if _, _, err := f.result(); err != nil {
		t.Fatal(err)
	}
	pub.Close()

	// The list needs the api action: the recording, once its file is closed.
	var rec record.Recording
	for {
		code := getJSON(t, base+"/v1/recordings/secret-cam", ownerToken, &rec)
		if code == http.StatusOK && len(rec.Segments) == 1 && rec.Segments[0].Duration > 2.5 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET /v1/recordings/secret-cam: %d %+v, want one segment of 3 s", code, rec)
		case <-time.After(100 * time.Millisecond):
		}
	}
	start := url.QueryEscape(rec.Segments[0].Start.Format(time.RFC3339Nano))
	u := fmt.Sprintf("%s/playback/secret-cam.mp4?start=%s&duration=2", base, start)

	for _, c := range []struct {
		name, bearer, query string
		code                int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"unknown token", "nope", "", http.StatusUnauthorized},
		{"api-only token", apiToken, "", http.StatusForbidden},
		{"read token as Bearer", readToken, "", http.StatusOK},
		{"read token in ?token=", "", readToken, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := u
			if c.query != "" {
				target += "&token=" + url.QueryEscape(c.query)
			}
			var hdr map[string]string
			if c.bearer != "" {
				hdr = map[string]string{"Authorization": "Bearer " + c.bearer}
			}
			r := send(t, nil, http.MethodGet, target, hdr, "")
			if r.status != c.code {
				t.Fatalf("%d %.200s, want %d", r.status, r.body, c.code)
			}
			if c.code != http.StatusOK {
				if strings.Contains(r.body, "ftyp") || strings.TrimSpace(r.body) == "" {
					t.Errorf("refusal body %.200q: want the reason, not media", r.body)
				}
				return
			}
			p := filepath.Join(t.TempDir(), "span.mp4")
			if err := os.WriteFile(p, []byte(r.body), 0o644); err != nil {
				t.Fatal(err)
			}
			pr := ffprobe(t, bin, p)
			if len(pr.Streams) == 0 || pr.Streams[0].CodecName != "h264" {
				t.Fatalf("streams %+v, want H264 first", pr.Streams)
			}
			if d := seconds(t, pr.Format.Duration); d < 1500*time.Millisecond || d > 3*time.Second {
				t.Errorf("lasts %v, want 2 s", d)
			}
		})
	}
}
