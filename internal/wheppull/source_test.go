package wheppull

import (
	"errors"
	"net/http"
	"testing"
)

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, want, bearer string }{
		{"whep://127.0.0.1:8080/whep/cam", "http://127.0.0.1:8080/whep/cam", ""},
		{"wheps://edge.example/whep/cam?token=abc", "https://edge.example/whep/cam?token=abc", ""},
		{"WHEP://u:s3cret@h:1/x", "http://h:1/x", "Bearer s3cret"},
	} {
		got, auth, err := Endpoint(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Endpoint(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		h := http.Header{}
		if auth != nil {
			auth(h)
		}
		if h.Get("Authorization") != tc.bearer {
			t.Errorf("Endpoint(%q) sends Authorization %q, want %q", tc.in, h.Get("Authorization"), tc.bearer)
		}
	}
	for _, bad := range []string{"http://h/x", "whep:///x", "rtsp://h/x", "whep://%zz"} {
		if _, _, err := Endpoint(bad); !errors.Is(err, ErrURL) {
			t.Errorf("Endpoint(%q): %v, want ErrURL", bad, err)
		}
	}
}
