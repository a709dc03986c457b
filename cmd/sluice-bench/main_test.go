package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestFlags checks the exit statuses and messages of bad invocations; the
// measuring itself is tested in internal/bench.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "What the publisher sends"},
		{[]string{"compare", "-h"}, 0, "starts MediaMTX and then sluice"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"-whip", "http://127.0.0.1:1/whip/x", "-whep", "http://127.0.0.1:1/whep/x", "-bitrate", "fast"}, 2, `bit rate "fast"`},
		{[]string{"-resolution", "720p"}, 2, `resolution "720p"`},
		{[]string{"-viewers", "3", "extra"}, 2, "unexpected arguments"},
		{[]string{"-viewers", "3"}, 1, "a WHIP URL and a WHEP or an RTSP URL"},
		{[]string{"compare", "-viewers", "", "-rtsp-readers", "0"}, 2, "-rtsp-readers"},
		{[]string{"compare", "-viewers", ""}, 2, "give -viewers, -streams, -rtsp-readers or -setups"},
		{[]string{"compare", "-viewers", "", "-setups", "-1"}, 2, "-setups -1"},
		{[]string{"setups", "-h"}, 0, "setups per core-second"},
		{[]string{"setups", "-sessions", "3"}, 1, "a WHIP and a WHEP URL"},
		{[]string{"setups", "-whip", "http://127.0.0.1:1/whip/x", "-whep", "http://127.0.0.1:1/whep/x", "-sessions", "0"}, 1, "sessions 0"},
		{[]string{"setups", "x"}, 2, "unexpected arguments"},
		{[]string{"compare", "-viewers", "50,x"}, 2, "-viewers"},
		{[]string{"compare", "-sluice", "/nonexistent/sluice", "-viewers", "1"}, 1, "/nonexistent/sluice"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
