package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// pluginRules is a ruleset of one plugin rule running the example plugin at
// examples/plugins/<name> with the given JSON configuration.
func pluginRules(t testing.TB, name, mode, config string, extra string) string {
	t.Helper()
	wasm := plugins.Build(t, "../../examples/plugins/"+name)
	return fmt.Sprintf(`
rules:
  - name: %s
    mode: %s
    plugin:
      module: %q
      config: '%s'
%s`, name, mode, wasm, config, extra)
}

func TestPluginRule(t *testing.T) {
	cases := map[string]struct {
		plugin, mode, config string
		series               string
		want                 Outcome
		wantLabels           string
		wantReason           string
	}{
		"requireteam keeps a known team": {
			plugin: "requireteam", mode: "enforce", config: `{"teams": ["core"]}`,
			series: `up{team="core"}`, want: Kept, wantLabels: `up{team="core"}`,
		},
		"requireteam drops a missing team": {
			plugin: "requireteam", mode: "enforce", config: `{"teams": ["core"]}`,
			series: `up{job="a"}`, want: Dropped, wantReason: "no team label",
		},
		"requireteam tags an unknown team": {
			plugin: "requireteam", mode: "enforce", config: `{"teams": ["core"], "action": "tag"}`,
			series: `up{team="x"}`, want: Changed, wantLabels: `up{team="x", team_violation="unknown"}`,
		},
		"shadow changes nothing": {
			plugin: "requireteam", mode: "shadow", config: `{"teams": ["core"]}`,
			series: `up{job="a"}`, want: Kept, wantLabels: `up{job="a"}`,
		},
		"costcenter derives cost_center": {
			plugin: "costcenter", mode: "enforce", config: `{"mapping": {"payments": "cc-42"}}`,
			series: `http_requests_total{namespace="payments"}`, want: Changed,
			wantLabels: `http_requests_total{cost_center="cc-42", namespace="payments"}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := compileYAML(t, pluginRules(t, tc.plugin, tc.mode, tc.config, ""))
			defer func() { require.NoError(t, e.Close(context.Background())) }()
			res := e.Apply(series(t, "team-a", tc.series, "counter"), nil)
			require.Equal(t, tc.want, res.Action, res.Reason)
			if tc.wantLabels != "" {
				require.Equal(t, mustLabels(t, tc.wantLabels), res.Labels)
			}
			if tc.wantReason != "" {
				require.Contains(t, res.Reason, tc.wantReason)
			}
		})
	}
}

// TestPluginRuleTrace: the rules test API explains a plugin's verdict like
// any rule's.
func TestPluginRuleTrace(t *testing.T) {
	e := compileYAML(t, pluginRules(t, "requireteam", "enforce", `{"teams": ["core"]}`, ""))
	defer e.Close(context.Background())
	var tr Trace
	res := e.Apply(series(t, "", `up{team="nope"}`, ""), &tr)
	require.Equal(t, Dropped, res.Action)
	require.Len(t, tr.Steps, 1)
	st := tr.Steps[0]
	require.Equal(t, KindPlugin, st.Kind)
	require.Equal(t, EffectDropped, st.Effect)
	require.Contains(t, st.Reason, "team nope is not a known team")
}

// TestPluginRuleCountsAndMemo: per-rule counters count plugin verdicts, and
// a repeat series the plugin kept does not cross into the sandbox again.
func TestPluginRuleCountsAndMemo(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewManager(nil, reg)
	defer m.Close(context.Background())
	cfg, err := LoadConfig([]byte(pluginRules(t, "requireteam", "enforce", `{"teams": ["core"]}`, "")))
	require.NoError(t, err)
	require.NoError(t, m.Reload(cfg))

	kept := series(t, "", `up{team="core"}`, "")
	for range 5 {
		require.Equal(t, Kept, m.Apply(kept, nil).Action)
	}
	require.Equal(t, Dropped, m.Apply(series(t, "", `up{job="x"}`, ""), nil).Action)

	require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.series.WithLabelValues("requireteam", "drop", "enforce")))
	// 1 call for the kept series (then remembered) + 1 for the dropped one.
	require.Equal(t, 2.0, gathered(t, reg, "promgov_plugin_series_total", "requireteam"))
}

// gathered returns the value of the counter name{plugin=plugin} in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name, plugin string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "plugin" && l.GetValue() == plugin {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{plugin=%q} not found", name, plugin)
	return 0
}

// TestPluginRuleReload: a reload with the same module and configuration
// keeps the loaded plugin; a changed configuration loads a new one; a
// module that fails to load is refused and the previous ruleset stays.
func TestPluginRuleReload(t *testing.T) {
	m := NewManager(nil, nil)
	defer m.Close(context.Background())
	load := func(doc string) error {
		cfg, err := LoadConfig([]byte(doc))
		require.NoError(t, err)
		return m.Reload(cfg)
	}
	require.NoError(t, load(pluginRules(t, "requireteam", "enforce", `{"teams": ["core"]}`, "")))
	first := m.Active().Engine.rules[0].plugin.p
	require.NoError(t, load(pluginRules(t, "requireteam", "enforce", `{"teams": ["core"]}`, "")))
	require.Same(t, first, m.Active().Engine.rules[0].plugin.p, "an unchanged plugin is reused")

	require.NoError(t, load(pluginRules(t, "requireteam", "enforce", `{"teams": ["core", "edge"]}`, "")))
	second := m.Active().Engine.rules[0].plugin.p
	require.NotSame(t, first, second)
	require.Equal(t, Kept, m.Apply(series(t, "", `up{team="edge"}`, ""), nil).Action)

	bad := filepath.Join(t.TempDir(), "bad.wasm")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho hi\n"), 0o644))
	err := load(fmt.Sprintf("rules:\n  - name: bad\n    plugin: {module: %q}\n", bad))
	require.ErrorContains(t, err, "bad")
	require.Same(t, second, m.Active().Engine.rules[0].plugin.p, "the previous ruleset stays")
	require.Equal(t, Kept, m.Apply(series(t, "", `up{team="edge"}`, ""), nil).Action)
}

// TestPluginRulesShareModule: two rules running one module with their own
// configurations (the module compiled once, for both) each give their own
// verdict, in an engine of Compile and in a Manager; a Manager closed and
// reloaded loads its plugins again.
func TestPluginRulesShareModule(t *testing.T) {
	wasm := plugins.Build(t, "../../examples/plugins/requireteam")
	doc := fmt.Sprintf(`
rules:
  - name: known-teams
    plugin:
      module: %[1]q
      config: '{"teams": ["core", "edge"]}'
  - name: core-only
    plugin:
      module: %[1]q
      config: '{"teams": ["core"], "action": "tag"}'
`, wasm)
	check := func(t *testing.T, apply func(*Series) Result) {
		t.Helper()
		require.Equal(t, Kept, apply(series(t, "", `up{team="core"}`, "")).Action)
		res := apply(series(t, "", `up{team="edge"}`, ""))
		require.Equal(t, Changed, res.Action, res.Reason)
		require.Equal(t, mustLabels(t, `up{team="edge", team_violation="unknown"}`), res.Labels)
		require.Equal(t, Dropped, apply(series(t, "", `up{job="x"}`, "")).Action)
	}

	t.Run("engine", func(t *testing.T) {
		e := compileYAML(t, doc)
		check(t, func(s *Series) Result { return e.Apply(s, nil) })
		require.NoError(t, e.Close(context.Background()))
	})
	t.Run("manager", func(t *testing.T) {
		cfg, err := LoadConfig([]byte(doc))
		require.NoError(t, err)
		m := NewManager(nil, nil)
		require.NoError(t, m.Reload(cfg))
		check(t, func(s *Series) Result { return m.Apply(s, nil) })
		require.NoError(t, m.Close(context.Background()))

		require.NoError(t, m.Reload(cfg), "a closed Manager reloads with a new loader")
		check(t, func(s *Series) Result { return m.Apply(s, nil) })
		require.NoError(t, m.Close(context.Background()))
	})
}

func TestPluginRuleConfigErrors(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"action set": {
			doc:  "rules:\n  - name: p\n    action: drop\n    plugin: {module: x.wasm}\n",
			want: `rules[0] ("p").action: plugin rules take no action`,
		},
		"no module": {
			doc:  "rules:\n  - name: p\n    plugin: {on_error: drop}\n",
			want: `rules[0] ("p").plugin.module: empty`,
		},
		"bad on_error": {
			doc:  "rules:\n  - name: p\n    plugin: {module: x.wasm, on_error: maybe}\n",
			want: `plugin.on_error: "maybe" is not keep or drop`,
		},
		"two kinds": {
			doc:  "rules:\n  - name: p\n    limits: {max_labels: 3}\n    action: drop\n    plugin: {module: x.wasm}\n",
			want: "set exactly one of relabel_configs, naming, labels, limits, plugin, deprecated, unused (found 2)",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadConfig([]byte(tc.doc))
			if err == nil {
				_, err = Compile(cfg, nil)
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// BenchmarkPluginRule: ns per series for a rule of kind plugin (the
// requireteam example) on first sight — every series new, so each crosses
// into the sandbox — and on repeat, where the engine remembers the kept
// series; against the same check as a compiled-in labels rule.
func BenchmarkPluginRule(b *testing.B) {
	const teams = `{"teams": ["core", "edge"]}`
	compiled := `
rules:
  - name: requireteam
    action: drop
    labels: {required: [team]}
`
	for _, bc := range []struct{ name, doc string }{
		{"plugin", pluginRules(b, "requireteam", "enforce", teams, "")},
		{"compiled-in", compiled},
	} {
		e := compileYAML(b, bc.doc)
		b.Run(bc.name+"/first-sight", func(b *testing.B) {
			b.ReportAllocs()
			s := series(b, "team-a", `http_requests_total{job="api", instance="10.0.0.1:9090", team="core", pod="p"}`, "counter")
			lb := labels.NewBuilder(s.Labels)
			for i := 0; b.Loop(); i++ {
				lb.Set("pod", strconv.Itoa(i))
				s.Labels = lb.Labels()
				if r := e.Apply(s, nil); r.Action != Kept {
					b.Fatal(r.Reason)
				}
			}
		})
		b.Run(bc.name+"/repeat", func(b *testing.B) {
			b.ReportAllocs()
			s := series(b, "team-a", `http_requests_total{job="api", instance="10.0.0.1:9090", team="core", pod="p"}`, "counter")
			for b.Loop() {
				if r := e.Apply(s, nil); r.Action != Kept {
					b.Fatal(r.Reason)
				}
			}
		})
		require.NoError(b, e.Close(context.Background()))
	}
}
