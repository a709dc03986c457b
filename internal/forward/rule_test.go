package forward

import (
	"strings"
	"testing"
)

func TestRuleCheck(t *testing.T) {
	for _, c := range []struct {
		r    Rule
		want string // "" = valid
	}{
		{Rule{Streams: "live-*", To: []string{"rtmp://a.example.com/live2/KEY", "rtmps://b.example.com/app/KEY", "srt://c.example.com:8890?streamid=publish:x"}}, ""},
		{Rule{Streams: "", To: []string{"rtmp://a/b"}}, "streams: is empty"},
		{Rule{Streams: "[", To: []string{"rtmp://a/b"}}, "not a glob"},
		{Rule{Streams: "*"}, "to: is empty"},
		{Rule{Streams: "*", To: []string{"http://a/b"}}, `scheme "http" is not allowed`},
		{Rule{Streams: "*", To: []string{"rtmp:///b"}}, "has no host"},
		{Rule{Streams: "*", To: []string{"srt://a.example.com?streamid=x"}}, "has no port"},
		{Rule{Streams: "*", To: []string{"rtmp://a b/c"}}, "is not a URL"},
	} {
		err := c.r.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.r, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.r, err, c.want)
		}
	}
}

func TestRedactHidesKeys(t *testing.T) {
	for in, want := range map[string]string{
		"rtmp://a.rtmp.youtube.com/live2/SECRETKEY":      "rtmp://a.rtmp.youtube.com/live2/…",
		"rtmps://live.twitch.tv/app/SECRETKEY?x=1":       "rtmps://live.twitch.tv/app/…?…",
		"srt://h:8890?streamid=publish:x&passphrase=SEC": "srt://h:8890?…",
		"rtmp://h/SECRETKEY":                             "rtmp://h/…",
		"rtmp://h/a/b/SECRETKEY":                         "rtmp://h/a/b/…",
		"rtmp://user:SECRET@h/app/k":                     "rtmp://h/app/…",
	} {
		got := redact(in)
		if got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
