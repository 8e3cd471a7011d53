package preview

import (
	"context"
	"log/slog"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/usage"
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
		d, err := ask(context.Background(), local{NewIngester(tf.res, tf.tracker, agg)}, activeRules(t, ""), nil, req)
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

// TestPreviewDropUnused: a candidate's usage.drop_unused is previewed from
// the distributor's running drop policy (its clocks of how long each
// metric has been unused), on the metric names the candidate's rules
// write, before the limits.
func TestPreviewDropUnused(t *testing.T) {
	tf := knownTraffic(t)
	ctx := context.Background()
	costs := usage.StaticCosts{{Name: "debug_events_total", Series: 20, SamplesRate: 2}}
	mgr, err := usage.NewManager(usage.DefaultConfig(), usage.Deps{Access: usage.NewAccessStats(10, 10), Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	mgr.Refresh(ctx) // debug_events_total: unused from now on; the running policy is off
	preview := func(t *testing.T, candidate string) (Data, map[string]Metric) {
		t.Helper()
		req, err := DecodeRequest([]byte(candidate), url.Values{}, "")
		require.NoError(t, err)
		d, err := ask(ctx, local{NewIngester(tf.res, tf.tracker, nil)}, activeRules(t, ""), mgr.Policy(), req)
		require.NoError(t, err)
		byMetric := map[string]Metric{}
		for _, m := range d.Metrics {
			byMetric[m.Metric] = m
		}
		return d, byMetric
	}
	rowOf := func(d Data) *Rule {
		for i := range d.Rules {
			if d.Rules[i].Rule == "usage.drop_unused" {
				return &d.Rules[i]
			}
		}
		return nil
	}

	d, byMetric := preview(t, "usage:\n  drop_unused: {mode: enforce, grace_period: 1ns}\n")
	require.Empty(t, d.DropUnusedBlocked)
	require.Equal(t, 1, d.Totals.MetricsChanged)
	dbg := byMetric["debug_events_total"]
	require.Equal(t, 20.0, dbg.SeriesDropped)
	require.Zero(t, dbg.SeriesAfter)
	require.Equal(t, 20.0, d.Totals.SeriesDropped)
	row := rowOf(d)
	require.NotNil(t, row)
	require.Equal(t, []Effect{{Effect: "dropped", Series: 20, SamplesRate: row.Effects[0].SamplesRate, Metrics: 1}}, row.Effects)

	d, _ = preview(t, "usage:\n  drop_unused: {mode: shadow, grace_period: 1ns}\n")
	require.Zero(t, d.Totals.MetricsChanged, "shadow changes nothing")
	require.Equal(t, "would_drop", rowOf(d).Effects[0].Effect)

	d, _ = preview(t, "usage:\n  drop_unused: {mode: enforce, grace_period: 1ns, deny: ['debug_.*']}\n")
	require.Zero(t, d.Totals.MetricsChanged)
	require.Nil(t, rowOf(d))

	d, _ = preview(t, "usage:\n  drop_unused: {mode: enforce, grace_period: 720h}\n")
	require.Equal(t, usage.BlockedDataTooYoung, d.DropUnusedBlocked, "the usage data is younger than the grace period")
	require.Zero(t, d.Totals.MetricsChanged)

	// The policy checks the name the rules write: renamed, the metric is
	// no longer the unused one.
	d, byMetric = preview(t, `rules:
  - name: rename-debug
    relabel_configs:
      - {source_labels: [__name__], regex: debug_(.*), target_label: __name__, replacement: dbg_$1}
usage:
  drop_unused: {mode: enforce, grace_period: 1ns}
`)
	require.Nil(t, rowOf(d))
	require.Equal(t, 20.0, byMetric["debug_events_total"].SeriesAfter)
}

// TestPreviewValuesPerLabel: max_values_per_label is checked against each
// output label's distinct values estimated from the sample (request_id:
// 3000 values, every sampled one distinct), refusing about 1 - max/values
// of the metric's series when enforced, before max_series_per_metric.
func TestPreviewValuesPerLabel(t *testing.T) {
	tf := knownTraffic(t)
	run := func(t *testing.T, mode string) Data {
		t.Helper()
		req, err := DecodeRequest([]byte(`cardinality:
  limits:
    metrics:
      - metric: api_requests_total
        max_values_per_label: 100
        max_values_per_label_mode: `+mode+`
`), url.Values{}, "")
		require.NoError(t, err)
		d, err := ask(context.Background(), local{NewIngester(tf.res, tf.tracker, nil)}, activeRules(t, ""), nil, req)
		require.NoError(t, err)
		return d
	}
	d := run(t, "enforce")
	require.Len(t, d.Limits, 1, "%+v", d.Limits)
	l := d.Limits[0]
	require.Equal(t, "max_values_per_label", l.Limit)
	require.Equal(t, "api_requests_total", l.Metric)
	require.Equal(t, "request_id", l.Label, "instance (10 values) and job (1) are under the limit")
	require.EqualValues(t, 100, l.Max)
	require.InEpsilon(t, 3000, l.Values, 0.05)
	require.InEpsilon(t, 2900, l.SeriesRefused, 0.05)
	require.InEpsilon(t, 2900, d.Totals.SeriesRefused, 0.05)
	require.InEpsilon(t, 100, d.Metrics[0].SeriesAfter, 0.1)

	d = run(t, "shadow")
	require.Len(t, d.Limits, 1)
	require.Equal(t, "shadow", d.Limits[0].Mode)
	require.Zero(t, d.Totals.SeriesRefused, "a shadow limit refuses nothing")
	require.Zero(t, d.Totals.MetricsChanged)
}
