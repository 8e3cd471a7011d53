package rules

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestReplayMatchesApply: applying once with ApplyRecorded and replaying
// the effects leaves every rule counter where applying twice leaves it.
func TestReplayMatchesApply(t *testing.T) {
	cfg, err := LoadConfig([]byte(metricsRulesYAML))
	require.NoError(t, err)
	twice, replayed := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	e1, err := Compile(cfg, NewMetrics(twice))
	require.NoError(t, err)
	e2, err := Compile(cfg, NewMetrics(replayed))
	require.NoError(t, err)
	for _, s := range []*Series{
		series(t, "", `debug_a`, ""),
		series(t, "", `up`, "gauge"),
		series(t, "", `up`, ""),
		series(t, "", `acme_up`, ""),
		series(t, "", `requests`, "counter"),
		series(t, "", `x`, "gauge"),
	} {
		want := e1.Apply(s, nil)
		e1.Apply(s, nil)
		var fx Effects
		got := e2.ApplyRecorded(s, &fx)
		require.True(t, fx.Replayable())
		e2.Replay(&fx)
		require.Equal(t, want.Action, got.Action)
		require.Equal(t, want.Rule, got.Rule)
		if got.Rule != "" {
			require.Equal(t, got.Rule, e2.RuleName(e2.RuleIndex(got.Rule)))
		}
	}
	require.Equal(t, counterValues(t, twice), counterValues(t, replayed))
}

// counterValues flattens every counter of g by name and labels.
func counterValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			out[key] = m.GetCounter().GetValue()
		}
	}
	require.NotEmpty(t, out)
	return out
}
