package rtmp

import (
	"errors"
	"net/url"
	"testing"

	"github.com/sluice-media/sluice/internal/hub"
)

func TestStreamOf(t *testing.T) {
	for _, c := range []struct {
		in          string
		name, token string
		err         error
	}{
		{in: "rtmp://h/live/cam1", name: "cam1"},
		{in: "rtmp://h/cam1", name: "cam1"},
		{in: "rtmp://h/live/cam1/", name: "cam1"},
		{in: "rtmp://h/live/cam1?token=T", name: "cam1", token: "T"},
		{in: "rtmp://h/a/b/c?x=1&token=T", name: "c", token: "T"},
		// A token on the server URL, the key after it.
		{in: "rtmp://h/live?token=T/cam1", name: "cam1", token: "T"},
		{in: "rtmp://h/live?token=T/cam1?other=1", name: "cam1", token: "T"},
		{in: "rtmp://h/", err: ErrNoStream},
		{in: "rtmp://h", err: ErrNoStream},
		{in: "rtmp://h/live/.hidden", err: ErrBadName},
		{in: "rtmp://h/live/a%20b", err: ErrBadName},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		name, token, err := streamOf(u)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: err %v, want %v", c.in, err, c.err)
			}
			continue
		}
		if err != nil || name != c.name || token != c.token {
			t.Errorf("%s: %q %q %v, want %q %q", c.in, name, token, err, c.name, c.token)
		}
	}
	if _, _, err := streamOf(nil); !errors.Is(err, ErrNoStream) {
		t.Errorf("nil URL: %v", err)
	}
}

// FuzzStreamOf: any URL gives a valid stream name or an error.
func FuzzStreamOf(f *testing.F) {
	for _, s := range []string{"rtmp://h/live/cam1?token=T", "rtmp://h/live?token=T/cam1", "rtmp://h/", "rtmp://h/a?/b?c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		name, _, err := streamOf(u)
		if err == nil && !hub.ValidName(name) {
			t.Fatalf("%q gave invalid stream %q", raw, name)
		}
	})
}
