package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	dto "github.com/prometheus/client_model/go"
)

// The deploy files live at the repository root.
const (
	alertsPath    = "../../deploy/prometheus/alerts.yml"
	alertTestPath = "../../deploy/prometheus/alerts_test.yml" // promtool test rules
	dashboardPath = "../../deploy/grafana/sluice-dashboard.json"
)

var metricName = regexp.MustCompile(`\bsluice_[a-z_]+`)

// exported returns every sluice_ family the registry exports, by name,
// with its type, from metrics where every family has a series.
func exported(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	out := map[string]dto.MetricType{}
	for _, cfg := range []Config{{}, {PerStreamLabels: true}} {
		m := New(cfg)
		p := m.Publisher("s", time.Now())
		p.Negotiated(nil)
		v := m.Viewer("s", time.Now())
		v.Negotiated(nil)
		lag := m.TranscoderLag("s")
		m.OfferRejected(KindWHIP, 503)
		fams, err := m.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "sluice_") {
				out[f.GetName()] = f.GetType()
			}
		}
		lag.Close()
		v.Close("")
		p.Close("")
	}
	return out
}

// usedNames returns the sluice_ metric names in text, a histogram's
// _bucket/_sum/_count series mapped to the histogram.
func usedNames(text string, families map[string]dto.MetricType) []string {
	var out []string
	for _, n := range metricName.FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(n, suffix)
			if ok && families[base] == dto.MetricType_HISTOGRAM {
				n = base
			}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestDeployFilesUseExportedMetrics fails on any metric name in the alert
// rules or the dashboard that sluice does not export (a typo, or a metric
// renamed without updating them), and on any exported metric that the
// dashboard does not show.
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	families := exported(t)

	raw, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Record string            `yaml:"record"`
				Expr   string            `yaml:"expr"`
				For    string            `yaml:"for"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	nRules := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			nRules++
			if r.Expr == "" || (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: group %s: rule %q%q needs an expr and one of alert or record", alertsPath, g.Name, r.Alert, r.Record)
			}
			if r.Alert != "" && r.Labels["severity"] == "" {
				t.Errorf("%s: alert %s has no severity label", alertsPath, r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: alert %s: for: %v", alertsPath, r.Alert, err)
				}
			}
		}
	}
	if nRules == 0 {
		t.Fatalf("%s: no rules", alertsPath)
	}
	// The whole file, comments included: an example there must work too.
	for _, n := range usedNames(string(raw), families) {
		if _, ok := families[n]; !ok {
			t.Errorf("%s uses %s, which sluice does not export", alertsPath, n)
		}
	}
	if raw, err := os.ReadFile(alertTestPath); err != nil {
		t.Error(err)
	} else {
		for _, n := range usedNames(string(raw), families) {
			if _, ok := families[n]; !ok {
				t.Errorf("%s uses %s, which sluice does not export", alertTestPath, n)
			}
		}
	}

	raw, err = os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		t.Fatalf("%s: no queries", dashboardPath)
	}
	shown := usedNames(strings.Join(exprs, "\n"), families)
	for _, n := range usedNames(string(raw), families) {
		if _, ok := families[n]; !ok {
			t.Errorf("%s uses %s, which sluice does not export", dashboardPath, n)
		}
	}
	for n := range families {
		if !slices.Contains(shown, n) {
			t.Errorf("%s: no panel or variable queries %s; add one", filepath.Base(dashboardPath), n)
		}
	}
}
