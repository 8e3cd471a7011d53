package preview

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
)

// TestPreviewAggregations: the preview applies the candidate's
// aggregations: after its rules (3000 api_requests_total series, 10
// instances, aggregated without request_id: about 10 output series with
// one sample a minute each), and against the aggregation rules the
// ingester runs: keeping them changes nothing, removing one gives its
// inputs back.
func TestPreviewAggregations(t *testing.T) {
	tf := knownTraffic(t)
	const rule = `{name: api-by-instance, match: api_requests_total, type: counter, without: [request_id], interval: 1m}`
	var running []aggregate.RuleConfig
	require.NoError(t, yaml.Unmarshal([]byte("["+rule+"]"), &running))
	preview := func(t *testing.T, ingesterRuns []aggregate.RuleConfig, candidate string) (Data, map[string]Metric, map[string]map[string]Effect) {
		t.Helper()
		var agg Aggregations
		if ingesterRuns != nil {
			d := &aggregate.Describer{}
			require.NoError(t, d.Set(ingesterRuns))
			agg = d
		}
		req, err := DecodeRequest([]byte(candidate), url.Values{}, "")
		require.NoError(t, err)
		d, err := ask(context.Background(), local{NewIngester(tf.res, tf.tracker, agg)}, activeRules(t, ""), req)
		require.NoError(t, err)
		byMetric := map[string]Metric{}
		for _, m := range d.Metrics {
			byMetric[m.Metric] = m
		}
		effects := map[string]map[string]Effect{}
		for _, r := range d.Rules {
			effects[r.Rule] = map[string]Effect{}
			for _, e := range r.Effects {
				effects[r.Rule][e.Effect] = e
			}
		}
		return d, byMetric, effects
	}

	t.Run("the candidate aggregates", func(t *testing.T) {
		d, byMetric, effects := preview(t, nil, "rules: []\naggregations:\n  - "+rule+"\n")
		require.Equal(t, 1, d.Totals.MetricsChanged)
		api := byMetric["api_requests_total"]
		require.InEpsilon(t, 3000, api.SeriesBefore, 0.05)
		require.InDelta(t, 10, api.SeriesAfter, 1, "the 10 instances' groups")
		require.Len(t, api.Outputs, 1)
		out := api.Outputs[0]
		require.NotEqual(t, "api_requests_total", out.Metric, "the input is no longer written, only the output")
		require.InDelta(t, out.Series/60, out.SamplesRate, 1e-9, "one sample per group and minute")
		require.InEpsilon(t, 3000, effects["aggregations: api-by-instance"]["aggregated"].Series, 0.05)
		require.Equal(t, 1, effects["aggregations: api-by-instance"]["aggregated"].Metrics)
		require.InEpsilon(t, 2990, d.Totals.SeriesSaved, 0.05)
	})

	t.Run("running already, the candidate keeps the ingesters' rules", func(t *testing.T) {
		d, _, effects := preview(t, running, "rules: []\n")
		require.Zero(t, d.Totals.MetricsChanged, "what the ingesters already do is not the candidate's change")
		require.NotContains(t, effects, "aggregations: api-by-instance")
	})

	t.Run("running already, the candidate versions the same rule", func(t *testing.T) {
		d, _, _ := preview(t, running, "rules: []\naggregations:\n  - "+rule+"\n")
		require.Zero(t, d.Totals.MetricsChanged)
	})

	t.Run("the candidate removes a running rule", func(t *testing.T) {
		d, byMetric, _ := preview(t, running, "rules: []\naggregations: []\n")
		require.Equal(t, 1, d.Totals.MetricsChanged)
		api := byMetric["api_requests_total"]
		require.InDelta(t, 10, api.SeriesBefore, 1)
		require.InEpsilon(t, 3000, api.SeriesAfter, 0.05, "the inputs are written again")
	})
}
