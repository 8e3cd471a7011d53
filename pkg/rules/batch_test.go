package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// pluginRuleYAML is one rule of kind plugin (a list item of rules:) running
// the plugin built from pkg (relative to this package) with the given
// JSON configuration; extra is more YAML under the rule (scope, on_error).
func pluginRuleYAML(t testing.TB, name, pkg, mode, config, extra string) string {
	t.Helper()
	wasm := plugins.Build(t, pkg)
	return fmt.Sprintf(`
  - name: %s
    mode: %s
%s    plugin:
      module: %q
      timeout: %s
      config: '%s'
`, name, mode, extra, wasm, timeout(pkg), config)
}

// timeout is the plugin timeout of the tests: generous for the examples,
// so that a loaded machine (-race) never turns a verdict into on_error;
// short for the hostile plugin, which loops until it.
func timeout(pkg string) string {
	if pkg == hostilePkg {
		return "20ms"
	}
	return "30s"
}

const (
	requireTeamPkg = "../../examples/plugins/requireteam"
	costCenterPkg  = "../../examples/plugins/costcenter"
	hostilePkg     = "../plugin/testdata/hostile"
)

// batchSeries are first-sight series for the batch tests: kept, changed,
// dropped, out of scope, type unknown, invalid after a rewrite, and a
// repeat within the batch.
func batchSeries(t testing.TB) []Series {
	var ss []Series
	add := func(tenant, s, typ string) { ss = append(ss, *series(t, tenant, s, typ)) }
	for i := range 3 {
		add("team-a", fmt.Sprintf(`http_requests_total{job="api", team="core", env="prod", pod="p%d"}`, i), "counter")
		add("team-b", fmt.Sprintf(`http_requests_total{job="api", team="core", env="prod", pod="p%d"}`, i), "")
		add("team-a", fmt.Sprintf(`http_requests_total{job="api", team="nope", pod="p%d"}`, i), "counter")
		add("team-a", fmt.Sprintf(`queue_length{job="worker", pod="p%d"}`, i), "gauge")
		add("team-b", fmt.Sprintf(`legacy_queue_length{job="worker", owner="core", pod="p%d"}`, i), "gauge")
		add("team-a", fmt.Sprintf(`debug_queue_length{job="api", team="core", pod="p%d"}`, i), "gauge")
		add("team-a", fmt.Sprintf(`bad_thing{job="api", namespace="payments", team="core", pod="p%d"}`, i), "")
		add("team-b", fmt.Sprintf(`requests{job="api-gw", namespace="search", team="edge", pod="p%d"}`, i), "")
		add("team-a", fmt.Sprintf(`cpu_seconds_total{namespace="payments", owner="edge", pod="p%d"}`, i), "counter")
	}
	add("team-a", `http_requests_total{job="api", team="core", env="prod", pod="p0"}`, "counter") // a repeat
	add("team-b", `http_requests_total{job="api", team="core", env="prod", pod="p1"}`, "")        // a repeat
	return ss
}

// batchCases are mixed rulesets: relabel, labels and naming rules around
// plugin rules in every mode and scope, with rewrites before a plugin,
// drops before it, and a plugin that always times out.
func batchCases(t *testing.T) map[string]string {
	relabel := `
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
  - name: owner-is-team
    relabel_configs:
      - source_labels: [owner]
        regex: "(.+)"
        target_label: team
  - name: rename-legacy
    relabel_configs:
      - source_labels: [__name__]
        regex: "legacy_(.*)"
        target_label: __name__
        replacement: "app_$1"
  - name: unname-bad
    relabel_configs:
      - source_labels: [__name__]
        regex: "bad_.*"
        target_label: __name__
        replacement: ""
`
	needEnv := `
  - name: needs-env
    action: tag
    labels: {required: [env]}
`
	typeSuffixes := `
  - name: type-suffixes
    mode: shadow
    action: tag
    naming: {type_suffixes: true}
`
	teams := `{"teams": ["core", "edge"]}`
	return map[string]string{
		"mixed": "rules:" + relabel + needEnv + typeSuffixes +
			pluginRuleYAML(t, "requireteam", requireTeamPkg, "enforce", teams, "") +
			pluginRuleYAML(t, "costcenter", costCenterPkg, "enforce", `{"mapping": {"payments": "cc-42"}}`, ""),
		"shadow plugin": "rules:" + needEnv +
			pluginRuleYAML(t, "requireteam", requireTeamPkg, "shadow", teams, "") + typeSuffixes,
		"scoped plugin": "rules:" + typeSuffixes +
			pluginRuleYAML(t, "requireteam", requireTeamPkg, "enforce", teams, "    scope: {tenants: [team-a], selector: '{job=~\"api.*\"}'}\n") +
			pluginRuleYAML(t, "costcenter", costCenterPkg, "enforce", `{"mapping": {"search": "cc-7"}}`, "    scope: {tenants: [team-b]}\n"),
		"plugin after a rewrite": "rules:" + relabel +
			pluginRuleYAML(t, "requireteam", requireTeamPkg, "enforce", `{"teams": ["core"], "action": "tag"}`, ""),
		"drop before plugin": "rules:" + relabel +
			pluginRuleYAML(t, "requireteam", requireTeamPkg, "enforce", teams, "") + needEnv,
		"plugins timing out with on_error": "rules:" + needEnv +
			strings.Replace(pluginRuleYAML(t, "hostile-keep", hostilePkg, "enforce", "loop", "    scope: {tenants: [team-a]}\n"),
				"      config:", "      on_error: keep\n      config:", 1) +
			strings.Replace(pluginRuleYAML(t, "hostile-drop", hostilePkg, "enforce", "loop", "    scope: {tenants: [team-b]}\n"),
				"      config:", "      on_error: drop\n      config:", 1) +
			pluginRuleYAML(t, "requireteam", requireTeamPkg, "enforce", teams, ""),
	}
}

// compiledWithRegistry compiles doc with metrics registered in a registry
// of its own.
func compiledWithRegistry(t *testing.T, doc string) (*Engine, *prometheus.Registry) {
	t.Helper()
	cfg, err := LoadConfig([]byte(doc))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	e, err := Compile(cfg, NewMetrics(reg))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close(context.Background())) })
	return e, reg
}

// counters renders every promgov_rule_* (or, with prefix, other) counter
// of reg as sorted lines "name{labels} value".
func counters(t *testing.T, reg *prometheus.Registry, prefix string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var out []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(ls, ","), m.GetCounter().GetValue()))
		}
	}
	sort.Strings(out)
	return out
}

// resultText renders r for comparison.
func resultText(r Result) string {
	return fmt.Sprintf("%s %s rule=%q reason=%q", r.Action, r.Labels, r.Rule, r.Reason)
}

// TestApplyBatchMatchesApply: for mixed rulesets, applying a batch rule by
// rule gives exactly the results, recorded effects and rule counters of
// applying its series one by one, on first sight and on repeat (the
// engine's cache), batch and per series alike.
func TestApplyBatchMatchesApply(t *testing.T) {
	for name, doc := range batchCases(t) {
		t.Run(name, func(t *testing.T) {
			one, oneReg := compiledWithRegistry(t, doc)
			many, manyReg := compiledWithRegistry(t, doc)
			require.True(t, many.HasBatchStages())
			ss := batchSeries(t)
			for round := range 2 { // first sight, then repeat
				out := make([]Result, len(ss))
				fxs := make([]Effects, len(ss))
				many.ApplyBatchRecorded(ss, fxs, out)
				outcomes := map[Outcome]int{}
				for i := range ss {
					var fx Effects
					want := one.ApplyRecorded(&ss[i], &fx)
					require.Equal(t, resultText(want), resultText(out[i]), "round %d series %d %s", round, i, ss[i].Labels)
					require.Equal(t, fx, fxs[i], "round %d series %d %s: effects", round, i, ss[i].Labels)
					outcomes[want.Action]++
				}
				t.Logf("round %d: %v", round, outcomes)
				require.Equal(t, counters(t, oneReg, "promgov_rule_"), counters(t, manyReg, "promgov_rule_"), "round %d", round)
			}
			// Without recording, on repeat.
			out := make([]Result, len(ss))
			many.ApplyBatch(ss, out)
			for i := range ss {
				require.Equal(t, resultText(one.Apply(&ss[i], nil)), resultText(out[i]), "series %d", i)
			}
			if name == "mixed" {
				requireEveryOutcome(t, out)
			}
		})
	}
}

// requireEveryOutcome checks that out has kept, changed, dropped and
// invalid series, and plugin verdicts, so that equality is not vacuous.
func requireEveryOutcome(t *testing.T, out []Result) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range out {
		seen[r.Action.String()] = true
		if strings.Contains(r.Reason, "series invalid after rule") {
			seen["invalid"] = true
		}
		if r.Rule == "requireteam" || r.Rule == "costcenter" {
			seen["plugin:"+r.Action.String()] = true
		}
	}
	for _, want := range []string{"kept", "changed", "dropped", "invalid", "plugin:dropped", "plugin:changed"} {
		require.True(t, seen[want], "no %s series: %v", want, seen)
	}
}

// TestApplyBatchCallsPluginOncePerBatch: a batch crosses into each plugin
// once per rule (per MaxBatch series), where Apply crosses once per series.
func TestApplyBatchCallsPluginOncePerBatch(t *testing.T) {
	doc := "rules:" +
		pluginRuleYAML(t, "requireteam", requireTeamPkg, "enforce", `{"teams": ["core"], "action": "tag"}`, "") +
		pluginRuleYAML(t, "costcenter", costCenterPkg, "enforce", `{"mapping": {"payments": "cc-42"}}`, "")
	e, reg := compiledWithRegistry(t, doc)
	// count is what the plugin counters read: calls (ok and error) and
	// series of each plugin.
	count := func() map[string]float64 {
		m := map[string]float64{}
		for _, p := range []string{"requireteam", "costcenter"} {
			m[p+" ok"] = gathered2(t, reg, "promgov_plugin_calls_total", p, "ok")
			m[p+" error"] = gathered2(t, reg, "promgov_plugin_calls_total", p, "error")
			m[p+" series"] = gathered(t, reg, "promgov_plugin_series_total", p)
		}
		return m
	}
	pod := 0
	mk := func(n int) []Series {
		ss := make([]Series, n)
		for i := range ss {
			ss[i] = *series(t, "team-a", fmt.Sprintf(`up{namespace="payments", team="core", pod="p%d"}`, pod), "")
			pod++
		}
		return ss
	}
	for _, tc := range []struct{ n, wantCalls int }{{1, 1}, {100, 1}, {MaxBatch, 1}, {MaxBatch + 88, 2}} {
		before := count()
		ss := mk(tc.n)
		out := make([]Result, len(ss))
		e.ApplyBatch(ss, out)
		after := count()
		for _, p := range []string{"requireteam", "costcenter"} {
			require.Equal(t, float64(tc.wantCalls), after[p+" ok"]-before[p+" ok"], "%d series, %s", tc.n, p)
			require.Equal(t, 0.0, after[p+" error"]-before[p+" error"], "%d series, %s", tc.n, p)
			require.Equal(t, float64(tc.n), after[p+" series"]-before[p+" series"], "%d series, %s", tc.n, p)
		}
		for _, r := range out {
			require.Equal(t, Changed, r.Action)
			require.Equal(t, "cc-42", r.Labels.Get("cost_center"))
		}
	}
	// Apply, by contrast, makes one call per series.
	before := count()
	for _, s := range mk(10) {
		e.Apply(&s, nil)
	}
	require.Equal(t, 10.0, count()["requireteam ok"]-before["requireteam ok"])
}

// gathered2 is gathered for a counter with an outcome label too.
func gathered2(t *testing.T, reg *prometheus.Registry, name, plugin, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var p, o bool
			for _, l := range m.GetLabel() {
				p = p || (l.GetName() == "plugin" && l.GetValue() == plugin)
				o = o || (l.GetName() == "outcome" && l.GetValue() == outcome)
			}
			if p && o {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
