package rules

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestFastPathsKeepSemantics checks that the hot-path shortcuts (probe, the
// per-name cache, the regex memo) never change an outcome: Apply with them
// must equal Apply with a trace (no name cache) and Apply evaluating every
// rule fully, on cold and on warm caches, for many random
// series against the realistic ruleset and a few extra rules.
func TestFastPathsKeepSemantics(t *testing.T) {
	extra := `
rules:
  - name: keep-only-app
    scope: {tenants: [strict]}
    relabel_configs:
      - source_labels: [__name__]
        regex: "app_.*|legacy_.*"
        action: keep
  - name: named-selector
    scope: {selector: '{__name__=~"http_.*"}'}
    action: tag
    naming: {required_prefixes: [http_requests]}
  - name: lower-name
    relabel_configs:
      - source_labels: [__name__]
        target_label: __name__
        action: lowercase
`
	engines := map[string]*Engine{"realistic": loadRealistic(t), "extra": compileYAML(t, extra)}
	names := []string{"http_requests_total", "debug_queue", "legacy_requests", "internal_x", "httpRequests",
		"request_latency_milliseconds", "app_up", "teamb_up", "go_gc_duration_seconds_count", "x_bucket", "HTTP_Errors"}
	vals := map[string][]string{
		"job":       {"api-server", "test-x", "worker", "api"},
		"env":       {"prod", "dev", " Prod ", "sandbox-1"},
		"path":      {"/users/123", "/a/b", "/x/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c"},
		"team":      {"core", ""},
		"le":        {"0.0001", "1", "+Inf"},
		"user_id":   {"7"},
		"client_ip": {"10.0.0.1"},
		"__tmp_x":   {"y"},
	}
	tenants := []string{"team-a", "team-b", "strict", "other"}
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs []Series
	for range 3000 {
		b := labels.NewBuilder(labels.EmptyLabels())
		b.Set("__name__", names[rng.IntN(len(names))])
		for n, vs := range vals {
			if rng.IntN(3) == 0 {
				b.Set(n, vs[rng.IntN(len(vs))])
			}
		}
		types := []string{"", "counter", "gauge", "histogram"}
		inputs = append(inputs, Series{Tenant: tenants[rng.IntN(len(tenants))], Labels: b.Labels(), Meta: Metadata{Type: modelType(types[rng.IntN(len(types))])}})
	}
	for name, e := range engines {
		t.Run(name, func(t *testing.T) {
			for pass := range 2 {
				for i := range inputs {
					s := &inputs[i]
					fast := e.Apply(s, nil)
					var tr Trace
					traced := e.Apply(s, &tr)
					require.Equal(t, traced, fast, "traced vs fast")
					e.noShortcuts = true
					slow := e.Apply(s, nil)
					e.noShortcuts = false
					msg := fmt.Sprintf("pass %d, tenant %s, series %s\ntrace:\n%s", pass, s.Tenant, s.Labels, tr.String())
					require.Equal(t, slow.Action, fast.Action, msg)
					require.Equal(t, slow.Rule, fast.Rule, msg)
					require.Equal(t, slow.Reason, fast.Reason, msg)
					require.True(t, labels.Equal(slow.Labels, fast.Labels), "%s: got %s, want %s", msg, fast.Labels, slow.Labels)
				}
			}
		})
	}
}

// TestFastPathsKeepMetrics checks that the shortcuts count exactly what
// full evaluation counts (the series cache replays type-unknown counts).
func TestFastPathsKeepMetrics(t *testing.T) {
	data, err := os.ReadFile("testdata/realistic.yaml")
	require.NoError(t, err)
	cfg, err := LoadConfig(data)
	require.NoError(t, err)
	regFast, regSlow := prometheus.NewRegistry(), prometheus.NewRegistry()
	fast, err := Compile(cfg, NewMetrics(regFast))
	require.NoError(t, err)
	slow, err := Compile(cfg, NewMetrics(regSlow))
	require.NoError(t, err)
	slow.noShortcuts = true
	inputs := []string{
		`http_requests_total{job="api-server", path="/api/users", team="core"}`,
		`http_requests_total{job="api-server", path="/api/users/7", team="core"}`,
		`debug_queue{job="worker"}`,
		`queue_length{job="worker", env="dev"}`,
		`legacy_hits{job="api"}`,
		`latency_milliseconds{job="api", team="core"}`,
	}
	for range 3 {
		for _, in := range inputs {
			for _, typ := range []string{"", "counter", "gauge"} {
				s := series(t, "team-a", in, typ)
				require.Equal(t, slow.Apply(s, nil), fast.Apply(s, nil), in)
			}
		}
	}
	render := func(reg *prometheus.Registry) string {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var b strings.Builder
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				fmt.Fprintf(&b, "%s %v %v\n", mf.GetName(), m.GetLabel(), m.GetCounter().GetValue())
			}
		}
		return b.String()
	}
	require.Equal(t, render(regSlow), render(regFast))
	require.Contains(t, render(regFast), "promgov_rule_type_unknown_total")
}
