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
		{in: "publish:", err: hub.ErrBadName},
		{in: "publish:../etc", err: hub.ErrBadName},
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
