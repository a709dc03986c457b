package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestPrintVersion(t *testing.T) {
	var b strings.Builder
	printVersion(&b)
	out := b.String()
	if !strings.HasPrefix(out, "sluice ") || !strings.Contains(out, "github.com/sluice-media/sluice") || !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version output:\n%s", out)
	}

	version, revision = "v9.9.9", "abc123"
	defer func() { version, revision = "", "" }()
	b.Reset()
	printVersion(&b)
	if out := b.String(); !strings.HasPrefix(out, "sluice v9.9.9\n") || !strings.Contains(out, "revision  abc123") {
		t.Errorf("version output with link-time values:\n%s", out)
	}
}
