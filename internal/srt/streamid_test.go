package srt

import (
	"errors"
	"testing"

	"github.com/sluice-media/sluice/internal/hub"
)

func TestParseStreamID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want streamID
		err  error
	}{
		{in: "publish:cam1", want: streamID{publish: true, stream: "cam1"}},
		{in: "read:cam1", want: streamID{stream: "cam1"}},
		{in: "read:cam1:tok", want: streamID{stream: "cam1", token: "tok"}},
		{in: "publish:cam1:a:b", want: streamID{publish: true, stream: "cam1", token: "a:b"}},
		{in: "#!::r=live,m=publish", want: streamID{publish: true, stream: "live"}},
		{in: "#!::m=request,r=live,t=tok", want: streamID{stream: "live", token: "tok"}},
		{in: "#!::r=live", want: streamID{stream: "live"}},
		{in: "", err: ErrStreamID},
		{in: "play:cam1", err: ErrStreamID},
		{in: "#!::r=live,m=bogus", err: ErrStreamID},
		{in: "#!::r", err: ErrStreamID},
		{in: "publish:", err: ErrBadName},
		{in: "publish:../etc", err: ErrBadName},
	} {
		got, err := parseStreamID(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%q: err %v, want %v", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// FuzzParseStreamID: any stream id parses or is refused, never panics,
// and what parses names a valid stream.
func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"publish:cam1", "read:cam1:tok", "#!::r=live,m=publish,t=x", "#!::m=request", "", ":", "#!::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := parseStreamID(raw)
		if err == nil && !hub.ValidName(id.stream) {
			t.Fatalf("%q parsed to invalid stream %q", raw, id.stream)
		}
	})
}
