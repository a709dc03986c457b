package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// edgeAPISession is a session as /v1/sessions and /v1/streams show it.
type edgeAPISession struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Stream string `json:"stream"`
	Remote string `json:"remote"`
	State  string `json:"state"`
}

// sessionsOf polls /v1/sessions until want(sessions) holds or d passes,
// and returns the last list.
func sessionsOf(t *testing.T, srv *node, d time.Duration, want func([]edgeAPISession) bool) []edgeAPISession {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var list struct {
			Sessions []edgeAPISession `json:"sessions"`
		}
		if code := getJSON(t, srv.base+"/v1/sessions", "", &list); code != http.StatusOK {
			t.Fatalf("/v1/sessions: %d", code)
		}
		if want(list.Sessions) || time.Now().After(deadline) {
			return list.Sessions
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publisherOf polls /v1/streams/{stream} until its publisher is of that
// kind or d passes, and returns the last publisher seen (nil: none).
func publisherOf(t *testing.T, srv *node, stream, kind string, d time.Duration) *edgeAPISession {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var info struct {
			Publisher *edgeAPISession `json:"publisher"`
		}
		code := getJSON(t, srv.base+"/v1/streams/"+stream, "", &info)
		if code == http.StatusOK && info.Publisher != nil && info.Publisher.Kind == kind || time.Now().After(deadline) {
			return info.Publisher
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func kinds(list []edgeAPISession, stream string) []string {
	var out []string
	for _, s := range list {
		if s.Stream == stream {
			out = append(out, s.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// TestEdgeSessionsInAPI: RTMP and SRT publishers and an RTMP player are
// listed in /v1/sessions, the publishers are their streams' publishers in
// /v1/streams, and DELETE /v1/sessions/{id} ends an RTMP publisher.
func TestEdgeSessionsInAPI(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, nil)
	rtmpBase := "rtmp://" + srv.RTMPAddr().String()
	ffmpegPublish(t, 60, "flv", rtmpBase+"/live/apirtmp")
	ffmpegPublish(t, 60, "mpegts", srtURL(srv, "publish:apisrt", "&pkt_size=1316"))
	waitStream(t, srv.Hub(), "apirtmp", 10*time.Second)
	waitStream(t, srv.Hub(), "apisrt", 10*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	player := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", rtmpBase+"/apirtmp", "-f", "null", "-")
	if err := player.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = player.Wait()
	}()

	list := sessionsOf(t, srv, 10*time.Second, func(l []edgeAPISession) bool {
		return slices.Equal(kinds(l, "apirtmp"), []string{"rtmp-publish", "rtmp-read"}) &&
			slices.Equal(kinds(l, "apisrt"), []string{"srt-publish"})
	})
	if got := kinds(list, "apirtmp"); !slices.Equal(got, []string{"rtmp-publish", "rtmp-read"}) {
		t.Fatalf("/v1/sessions of apirtmp: %v, want rtmp-publish and rtmp-read", got)
	}
	if got := kinds(list, "apisrt"); !slices.Equal(got, []string{"srt-publish"}) {
		t.Fatalf("/v1/sessions of apisrt: %v, want srt-publish", got)
	}
	for _, s := range list {
		if s.ID == "" || s.Remote == "" || s.State != "connected" {
			t.Errorf("session %+v: want an id, a remote and state connected", s)
		}
	}
	pub := publisherOf(t, srv, "apirtmp", "rtmp-publish", time.Second)
	if pub == nil || pub.Kind != "rtmp-publish" {
		t.Fatalf("apirtmp's publisher %+v, want rtmp-publish", pub)
	}
	if p := publisherOf(t, srv, "apisrt", "srt-publish", time.Second); p == nil || p.Kind != "srt-publish" {
		t.Fatalf("apisrt's publisher %+v, want srt-publish", p)
	}

	if r := send(t, nil, http.MethodDelete, srv.base+"/v1/sessions/"+pub.ID, nil, ""); r.status != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", pub.ID, r.status, r.body)
	}
	// The stream itself may wait for its publisher to come back
	// (stream.reconnect_grace); the session is gone at once.
	if got := kinds(sessionsOf(t, srv, 5*time.Second, func(l []edgeAPISession) bool {
		return slices.Equal(kinds(l, "apirtmp"), []string{"rtmp-read"})
	}), "apirtmp"); slices.Contains(got, "rtmp-publish") {
		t.Fatalf("sessions of apirtmp %v 5 s after the publisher was kicked", got)
	}
	if p := publisherOf(t, srv, "apirtmp", "", 0); p != nil {
		t.Errorf("apirtmp's publisher %+v after the kick, want none", p)
	}
	if r := send(t, nil, http.MethodDelete, srv.base+"/v1/sessions/"+pub.ID, nil, ""); r.status != http.StatusNotFound {
		t.Errorf("second DELETE %s: %d, want 404", pub.ID, r.status)
	}
}

// TestEdgePublisherTakeover: with stream.publisher_takeover, an SRT
// publisher replaces an RTMP one, a WHIP publisher the SRT one, and an
// RTMP publisher the WHIP one.
func TestEdgePublisherTakeover(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, func(c *config.Config) { c.Stream.PublisherTakeover = true })
	ffmpegPublish(t, 60, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/tk")
	if p := publisherOf(t, srv, "tk", "rtmp-publish", 10*time.Second); p == nil || p.Kind != "rtmp-publish" {
		t.Fatalf("publisher %+v, want rtmp-publish", p)
	}
	ffmpegPublish(t, 60, "mpegts", srtURL(srv, "publish:tk", "&pkt_size=1316"))
	if p := publisherOf(t, srv, "tk", "srt-publish", 10*time.Second); p == nil || p.Kind != "srt-publish" {
		t.Fatalf("publisher %+v after the SRT publish, want srt-publish", p)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/tk", client.PublishOptions{})
	if err != nil {
		t.Fatalf("WHIP publish over the SRT publisher: %v", err)
	}
	defer pub.Close()
	if p := publisherOf(t, srv, "tk", "whip", 5*time.Second); p == nil || p.Kind != "whip" {
		t.Fatalf("publisher %+v after the WHIP publish, want whip", p)
	}
	if got := kinds(sessionsOf(t, srv, 5*time.Second, func(l []edgeAPISession) bool {
		return slices.Equal(kinds(l, "tk"), []string{"whip"})
	}), "tk"); !slices.Equal(got, []string{"whip"}) {
		t.Fatalf("sessions of tk %v, want only the WHIP publisher", got)
	}

	ffmpegPublish(t, 60, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/tk")
	if p := publisherOf(t, srv, "tk", "rtmp-publish", 10*time.Second); p == nil || p.Kind != "rtmp-publish" {
		t.Fatalf("publisher %+v after the second RTMP publish, want rtmp-publish", p)
	}
	select {
	case <-pub.Done():
	case <-time.After(5 * time.Second):
		t.Error("the WHIP publisher was not closed by the takeover")
	}
}
