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
      config: '%s'
`, name, mode, extra, wasm, config)
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
		"plugin timing out with on_error drop": "rules:" + typeSuffixes +
			strings.Replace(pluginRuleYAML(t, "hostile", hostilePkg, "enforce", "loop", "    scope: {tenants: [team-b]}\n"),
				"      config:", "      timeout: 20ms\n      on_error: drop\n      config:", 1) + needEnv,
		"plugin timing out with on_error keep": "rules:" + needEnv +
			strings.Replace(pluginRuleYAML(t, "hostile", hostilePkg, "enforce", "loop", ""),
				"      config:", "      timeout: 20ms\n      config:", 1) +
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
			// Without recording, and through a fresh engine's cold caches.
			plain, _ := compiledWithRegistry(t, doc)
			out := make([]Result, len(ss))
			plain.ApplyBatch(ss, out)
			for i := range ss {
				require.Equal(t, resultText(one.Apply(&ss[i], nil)), resultText(out[i]), "series %d", i)
			}
		})
	}
}

// TestApplyBatchCoversEveryOutcome: the mixed ruleset's series are kept,
// changed, dropped by a rule and dropped as invalid, so the equality above
// is not vacuous.
func TestApplyBatchCoversEveryOutcome(t *testing.T) {
	e, _ := compiledWithRegistry(t, batchCases(t)["mixed"])
	ss := batchSeries(t)
	out := make([]Result, len(ss))
	e.ApplyBatch(ss, out)
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
	calls := func(reg *prometheus.Registry) (calls, series string) {
		c := counters(t, reg, "promgov_plugin_")
		var cs, ss []string
		for _, l := range c {
			switch {
			case strings.HasPrefix(l, "promgov_plugin_calls_total"):
				cs = append(cs, l)
			case strings.HasPrefix(l, "promgov_plugin_series_total"):
				ss = append(ss, l)
			}
		}
		return strings.Join(cs, "\n"), strings.Join(ss, "\n")
	}
	mk := func(n, from int) []Series {
		ss := make([]Series, n)
		for i := range ss {
			ss[i] = *series(t, "team-a", fmt.Sprintf(`up{namespace="payments", team="core", pod="p%d"}`, from+i), "")
		}
		return ss
	}
	for _, tc := range []struct {
		n         int
		wantCalls int
	}{{1, 1}, {100, 1}, {MaxBatch, 1}, {MaxBatch + 88, 2}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			e, reg := compiledWithRegistry(t, doc)
			_, _ = calls(reg) // the self-tests at load are not counted as calls
			ss := mk(tc.n, 0)
			out := make([]Result, len(ss))
			e.ApplyBatch(ss, out)
			gotCalls, gotSeries := calls(reg)
			for _, p := range []string{"costcenter", "requireteam"} {
				require.Contains(t, gotCalls, fmt.Sprintf("promgov_plugin_calls_total{outcome=ok,plugin=%s} %d", p, tc.wantCalls))
				require.Contains(t, gotCalls, fmt.Sprintf("promgov_plugin_calls_total{outcome=error,plugin=%s} 0", p))
			}
			require.Equal(t, fmt.Sprintf("promgov_plugin_series_total{plugin=costcenter} %d\npromgov_plugin_series_total{plugin=requireteam} %d", tc.n, tc.n), gotSeries)
			for _, r := range out {
				require.Equal(t, Changed, r.Action)
				require.Equal(t, "cc-42", r.Labels.Get("cost_center"))
			}
			// Changed series are not the engine's to remember (the
			// distributor's series cache does): the repeat crosses again,
			// once per batch.
			e.ApplyBatch(ss, out)
			gotCalls, _ = calls(reg)
			require.Contains(t, gotCalls, fmt.Sprintf("plugin=requireteam} %d", 2*tc.wantCalls))
		})
	}
	// Apply, by contrast, makes one call per series.
	e, reg := compiledWithRegistry(t, doc)
	for _, s := range mk(10, 0) {
		e.Apply(&s, nil)
	}
	gotCalls, _ := calls(reg)
	require.Contains(t, gotCalls, "plugin=requireteam} 10")
}
