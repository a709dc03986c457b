package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestPullCredential: a pull credential is good for its stream, with its
// secret, near its time, and nothing else.
func TestPullCredential(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	now := time.Unix(1_800_000_000, 0)
	good := signPull(secret, "edge1", "cam", now)
	tests := []struct {
		name, value, stream string
		at                  time.Time
		want                string // error substring; empty: accepted
	}{
		{"valid", good, "cam", now, ""},
		{"valid within skew", good, "cam", now.Add(50 * time.Second), ""},
		{"other stream", good, "cam2", now, "signature does not match"},
		{"other secret", signPull("another-secret-16+", "edge1", "cam", now), "cam", now, "signature does not match"},
		{"node swapped", strings.Replace(good, "edge1", "edge2", 1), "cam", now, "signature does not match"},
		{"too old", good, "cam", now.Add(2 * time.Minute), "off"},
		{"from the future", good, "cam", now.Add(-2 * time.Minute), "off"},
		{"too few fields", "edge1 1800000000", "cam", now, "want 3 fields"},
		{"bad time", "edge1 soon abc", "cam", now, "bad time"},
		{"empty", "", "cam", now, "want 3 fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node, err := checkPull(secret, tc.value, tc.stream, tc.at)
			if tc.want == "" {
				if err != nil || node != "edge1" {
					t.Fatalf("got %q, %v; want edge1 accepted", node, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, %v; want an error with %q", node, err, tc.want)
			}
		})
	}
}
