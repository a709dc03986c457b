package record

import (
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	for _, tc := range []struct{ pattern, want, err string }{
		{DefaultName, "cam-1/2026-03-04_05-06-07", ""},
		{"%Y/%m/%d/%stream_%H%M%S.%f", "2026/03/04/cam-1_050607.890123", ""},
		{"%s-%%-%stream", "1772600767-%-cam-1", ""},
		{"bad-%q", "", "unknown verb %q"},
		{"trailing-%", "", "ends with %"},
	} {
		got, err := expand(tc.pattern, "cam-1", at)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("expand(%q): %v, want error %q", tc.pattern, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("expand(%q) = %q, %v, want %q", tc.pattern, got, err, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"", DefaultName, "%stream", "a/b/%Y"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"/abs/%stream", "../%stream", "a//b", "a/./b", "%x", "%stream/"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bytes
	}{
		{"0", 0}, {"1048576", 1 << 20}, {"10GiB", 10 << 30}, {"10G", 10 << 30}, {"500MB", 500e6},
		{"1 KiB", 1024}, {"7B", 7}, {" 2TiB ", 2 << 40},
	} {
		got, err := ParseBytes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "10XB", "1.5GiB", "GiB", "99999999999TiB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
	for _, b := range []Bytes{0, 1, 1023, 1024, 10 << 30, 3 << 40, 500e6} {
		back, err := ParseBytes(b.String())
		if err != nil || back != b {
			t.Errorf("%d → %q → %d, %v", b, b.String(), back, err)
		}
	}
}

func TestRuleMatches(t *testing.T) {
	r := Rule{Streams: "cam-*"}
	if !r.matches("cam-1") || r.matches("desk") {
		t.Error("cam-* matches wrongly")
	}
	if !(Rule{}).matches("anything") {
		t.Error("empty pattern must match every stream")
	}
	d := Rule{Dir: "/r"}.withDefaults()
	if d.Streams != "*" || d.Name != DefaultName || d.Segment != DefaultSegment || d.Audio != AudioAAC {
		t.Errorf("defaults: %+v", d)
	}
	if err := CheckPattern("["); err == nil {
		t.Error(`pattern "[" accepted`)
	}
}
