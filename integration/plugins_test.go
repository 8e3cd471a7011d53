package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin/plugintest"
)

// TestPluginRulesEndToEnd loads the two example WebAssembly plugins and a
// hostile one into a real cluster and checks what reaches a real
// Prometheus:
//
//	team-a, team-b ──RW 1.0──▶ distributor ──gRPC──▶ ingester ──RW──▶ Prometheus 3.16
//	                           rules: require-team (requireteam.wasm, enforce)
//	                                  cost-center  (costcenter.wasm, enforce)
//	                                  team-shadow  (requireteam.wasm, shadow)
//	                                  spin         (hostile.wasm "loop", team-b only,
//	                                                timeout 100ms, on_error drop)
func TestPluginRulesEndToEnd(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	dir := t.TempDir()
	b := plugintest.NewBuilder(dir)
	requireTeam := b.Build(t, "../examples/plugins/requireteam")
	costCenter := b.Build(t, "../examples/plugins/costcenter")
	hostile := b.Build(t, "../pkg/plugin/testdata/hostile")

	cfg := fmt.Sprintf(`
rules:
  - name: require-team
    plugin:
      module: %[1]q
      config: '{"teams": ["core", "edge"]}'
  - name: cost-center
    plugin:
      module: %[2]q
      config: '{"mapping": {"payments": "cc-42"}}'
  - name: team-shadow
    mode: shadow
    plugin:
      module: %[1]q
      config: '{"teams": ["nobody"]}'
  - name: spin
    scope: {tenants: [team-b]}
    plugin:
      module: %[3]q
      config: loop
      timeout: 100ms
      on_error: drop
`, requireTeam, costCenter, hostile)
	cfgPath := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	c := startRulesCluster(t, cfgPath)

	now := time.Now()
	writeV1As(t, c, "team-a", now,
		[]string{"plugin_requests_total", "team", "core", "namespace", "payments"},
		[]string{"plugin_requests_total", "team", "edge", "namespace", "search"},
		[]string{"plugin_requests_total", "namespace", "payments"}, // no team: dropped
	)
	// team-b's series reach the plugin that loops: each batch times out and
	// takes on_error (drop); team-a's traffic is not affected.
	writeV1As(t, c, "team-b", now,
		[]string{"plugin_requests_total", "team", "core", "namespace", "batch"},
	)
	waitSeries(t, c, `plugin_requests_total`,
		`{__name__="plugin_requests_total", cost_center="cc-42", namespace="payments", team="core"}`,
		`{__name__="plugin_requests_total", namespace="search", team="edge"}`,
	)
	require.Equal(t, 1.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="enforce",rule="require-team"}`))
	require.Equal(t, 1.0, distMetric(t, c, `promgov_rule_series_total{action="tag",mode="enforce",rule="cost-center"}`))
	// The shadow rule saw the three series the enforcing rules let through
	// and would have dropped each; it changed nothing.
	require.Equal(t, 3.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="shadow",rule="team-shadow"}`))
	require.Equal(t, 1.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="enforce",rule="spin"}`))
	require.Equal(t, 1.0, distMetric(t, c, `promgov_plugin_errors_total{kind="timeout",plugin="spin"}`))

	// The distributor still serves, and a reload that names a module that
	// is not WebAssembly is refused with the previous rules kept.
	bad := filepath.Join(dir, "not-wasm.wasm")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("rules:\n  - name: broken\n    plugin: {module: %q}\n", bad)), 0o644))
	reloadAndWait(t, c, 0)
	writeV1As(t, c, "team-a", now.Add(time.Second),
		[]string{"plugin_requests_total", "namespace", "orphans"}, // still dropped by require-team
		[]string{"plugin_marker_total", "team", "core"},
	)
	waitSeries(t, c, `plugin_marker_total`, `{__name__="plugin_marker_total", team="core"}`)
	require.Equal(t, 2.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="enforce",rule="require-team"}`))
}
