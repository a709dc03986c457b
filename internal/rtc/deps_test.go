package rtc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineLinksNoOutputs: the WebRTC engine depends on none of the
// configuration, the outputs or the transcoder, and on no cgo package of
// sluice, so that whatever imports rtc (whip, whep, the cluster, a bench)
// does not link libav. internal/server maps config.WebRTC onto rtc.Config.
func TestEngineLinksNoOutputs(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const module = "github.com/sluice-media/sluice/"
	forbidden := map[string]bool{
		module + "internal/config":    true,
		module + "internal/record":    true,
		module + "internal/transcode": true,
		module + "internal/hls":       true,
		module + "internal/tap":       true,
	}
	var seen int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, cgo, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(path, module) {
			continue
		}
		seen++
		if forbidden[path] {
			t.Errorf("rtc depends on %s", path)
		}
		if cgo != "0" {
			t.Errorf("rtc depends on %s, a cgo package", path)
		}
	}
	if seen == 0 { // rtc itself is always listed
		t.Fatalf("go list named no sluice package:\n%s", out)
	}
}
