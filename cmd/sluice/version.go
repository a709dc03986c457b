package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and revision may be set at link time, for builds without module
// or VCS information (a Docker build from a source tree without .git):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.revision=abc123" ./cmd/sluice
var version, revision string

// printVersion writes "sluice VERSION" and the build details that
// runtime/debug knows: module path and version, VCS revision, commit time
// and whether the tree was modified, Go version and platform.
func printVersion(w io.Writer) {
	v, rev, modified, commitTime, module := version, revision, "", "", "github.com/sluice-media/sluice"
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		module, goVersion = bi.Main.Path, bi.GoVersion
		if v == "" {
			v = bi.Main.Version // "(devel)" for a build from a checkout
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				commitTime = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	fmt.Fprintf(w, "sluice %s\n", v)
	fmt.Fprintf(w, "  module    %s\n", module)
	if rev != "" {
		fmt.Fprintf(w, "  revision  %s%s\n", rev, modified)
	}
	if commitTime != "" {
		fmt.Fprintf(w, "  committed %s\n", commitTime)
	}
	fmt.Fprintf(w, "  go        %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
}
