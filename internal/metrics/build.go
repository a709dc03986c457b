package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision may be set at link time, like main.version, for
// builds without module or VCS information:
//
//	-ldflags "-X github.com/sluice-media/sluice/internal/metrics.version=v1.2.3"
var version, revision string

// buildInfo returns the constant sluice_build_info gauge: 1, labelled with
// the module version, the VCS revision the binary was built from (empty
// when the build had no VCS information) and the Go version.
func buildInfo() prometheus.Collector {
	version, revision, goVersion := version, revision, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && revision == "" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "sluice_build_info",
		Help:        "Always 1; the labels say which build of sluice is running.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	}, func() float64 { return 1 })
}
