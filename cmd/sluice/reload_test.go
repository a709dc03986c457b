package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReload runs sluice as the command does, with a config file:
// SIGHUP after a source was added to the file starts it (GET /v1/sources
// lists it); SIGHUP after the file was broken keeps it; SIGTERM stops the
// server with status 0.
func TestSIGHUPReload(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // a free port, for the config file (another test could take it: unlikely)
	file := filepath.Join(t.TempDir(), "sluice.yml")
	head := fmt.Sprintf("http: {listen: %q}\nwebrtc: {udp_port: 0, listen_ips: [127.0.0.1]}\nrtsp: {listen: \"\"}\nlog: {level: warn}\n", addr)
	write := func(body string) {
		if err := os.WriteFile(file, []byte(head+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	saved := os.Args
	os.Args = []string{"sluice", "-config", file}
	defer func() { os.Args = saved }()
	status := make(chan int, 1)
	go func() { status <- run() }()

	list := func() (map[string]string, error) {
		resp, err := http.Get("http://" + addr + "/v1/sources")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v struct {
			Sources []struct{ Stream, URL string } `json:"sources"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%w: %s", err, b)
		}
		out := map[string]string{}
		for _, s := range v.Sources {
			out[s.Stream] = s.URL
		}
		return out, nil
	}
	wait := func(what string, cond func(map[string]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := list()
			if err == nil && cond(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: sources %v (%v)", what, got, err)
			}
			select {
			case code := <-status:
				t.Fatalf("sluice exited with %d", code)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	wait("started", func(m map[string]string) bool { return len(m) == 0 })

	// A camera that refuses: the source is listed, in state error.
	write("sources:\n  - {stream: cam, url: \"rtsp://127.0.0.1:1/x\", transport: tcp}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait("source added by SIGHUP", func(m map[string]string) bool { return m["cam"] == "rtsp://127.0.0.1:1/x" })

	write("sources:\n  - {stream: cam, url: \"ftp://nowhere\"}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a refused reload announces nothing to wait for
	wait("kept after a bad reload", func(m map[string]string) bool { return m["cam"] == "rtsp://127.0.0.1:1/x" })

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-status:
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sluice did not stop on SIGTERM")
	}
}
