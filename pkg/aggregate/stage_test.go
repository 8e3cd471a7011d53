package aggregate

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/stage"
)

// TestRulesAreConsumers runs aggregation rules through the stage
// interface, as any stage kind: Eval answers without consuming, Consume
// gives the same verdict and folds the samples, and the rule's output is
// what Process would have written.
func TestRulesAreConsumers(t *testing.T) {
	rules := []RuleConfig{
		rule10s("sum", "req_total", nil),
		{Name: "copy", Match: `lat_seconds`, Without: []string{"pod"}, Interval: 10_000_000_000, KeepInput: true},
		{Name: "svc_a", Match: `up{svc="a"}`, Without: []string{"pod"}, Interval: 10_000_000_000, Tenants: []string{"t"}},
		{Name: "counters", Match: `mem_bytes`, Without: []string{"pod"}, Interval: 10_000_000_000, Type: TypeCounter},
		{Name: "sum_q", Match: `rpc_seconds`, Without: []string{"pod"}, Interval: 10_000_000_000},
	}
	summary := func(ls labels.Labels) in {
		return in{typ: writev2.Metadata_METRIC_TYPE_SUMMARY, ls: ls, samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}}
	}
	// The input's metadata type as a stage.Input carries it.
	typeName := map[writev2.Metadata_MetricType]model.MetricType{
		writev2.Metadata_METRIC_TYPE_COUNTER: model.MetricTypeCounter,
		writev2.Metadata_METRIC_TYPE_GAUGE:   model.MetricTypeGauge,
		writev2.Metadata_METRIC_TYPE_SUMMARY: model.MetricTypeSummary,
	}
	for _, tc := range []struct {
		name, tenant   string
		x              in
		want           stage.Action
		reason, output string
	}{
		{name: "counter aggregated", tenant: "t", x: counter(pod("req_total", "pod", "1", "svc", "x"), 1000, 5), want: stage.ActionAggregate,
			reason: "aggregation sum: sum every 10s", output: `{__name__="req_total:sum_without_pod", svc="x"}`},
		{name: "keep_input copies", tenant: "t", x: counter(pod("lat_seconds", "pod", "1"), 1000, 5), want: stage.ActionCopy,
			reason: "aggregation copy: sum every 10s"},
		{name: "gauge", tenant: "t", x: gauge(pod("up", "pod", "1", "svc", "a"), 1000, 1), want: stage.ActionAggregate,
			reason: "aggregation svc_a: sum every 10s"},
		{name: "other tenant: out of scope", tenant: "u", x: gauge(pod("up", "pod", "1", "svc", "a"), 1000, 1)},
		{name: "declared type contradicted: passed through", tenant: "t", x: gauge(pod("mem_bytes", "pod", "1"), 1000, 1), reason: ReasonWrongType},
		{name: "summary quantile dropped", tenant: "t", x: summary(pod("rpc_seconds", "pod", "1", "quantile", "0.5")),
			want: stage.ActionDrop, reason: ReasonSummaryQuantile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, rules...)
			x, ls := tc.x, tc.x.ls
			cs := e.Stages(ls.Get(model.MetricNameLabel))
			require.Len(t, cs, 1)
			c := cs[0]
			var lb labels.Builder
			ev := c.Eval(&stage.Input{Tenant: tc.tenant, Labels: ls, Meta: stage.Metadata{Type: typeName[x.typ]}, WantLabels: true, Builder: &lb})
			require.Equal(t, tc.want, ev.Action)
			require.Equal(t, tc.reason, ev.Reason)
			if tc.output != "" {
				require.Equal(t, tc.output, ev.Labels.String())
			}
			require.Empty(t, e.Stats(), "Eval consumes nothing")

			b, _ := batchOf(t, x)
			it := record.NewIter(b)
			require.True(t, it.Next())
			cv := c.Consume(&stage.Input{Tenant: tc.tenant, WantLabels: true}, it.Entry())
			require.Equal(t, ev.Action, cv.Action, "Consume decides as Eval")
			require.Equal(t, ev.Reason, cv.Reason)
			require.Equal(t, ev.Labels.String(), cv.Labels.String())
			if tc.want == stage.ActionAggregate || tc.want == stage.ActionCopy {
				require.Len(t, e.Stats(), 1, "Consume folded the series")
			} else {
				require.Empty(t, e.Stats())
			}
		})
	}
}

// TestStagesMatchProcess: the verdicts of Consume, applied with the rules'
// modes, take out of a batch exactly what Process takes.
func TestStagesMatchProcess(t *testing.T) {
	rules := []RuleConfig{
		rule10s("sum", "req_total", nil),
		{Name: "shadow", Match: `req_total`, Without: []string{"svc"}, Interval: 10_000_000_000, Mode: ModeShadow},
		{Name: "copy", Match: `lat_seconds`, Without: []string{"pod"}, Interval: 10_000_000_000, KeepInput: true},
	}
	ins := []in{
		counter(pod("req_total", "pod", "1", "svc", "x"), 1000, 1),
		counter(pod("req_total", "pod", "2", "svc", "x"), 1000, 1),
		counter(pod("lat_seconds", "pod", "1"), 1000, 1),
		gauge(pod("req_total", "pod", "3"), 1000, 1), // a gauge under a counter name: summed as a gauge
		counter(pod("other_total", "pod", "1"), 1000, 1),
	}
	b, names := batchOf(t, ins...)
	kept, taken := mustEngine(t, rules...).Process("t", b, names)

	e := mustEngine(t, rules...)
	var want []byte
	it := record.NewIter(b)
	for i := 0; it.Next(); i++ {
		take, keep := false, false
		for _, c := range e.Stages(names[i]) {
			v := c.Consume(&stage.Input{Tenant: "t"}, it.Entry())
			if !c.(*rule).enforce { // the engine applies modes
				continue
			}
			switch v.Action {
			case stage.ActionAggregate, stage.ActionDrop:
				take = true
			case stage.ActionCopy:
				keep = true
			case "":
				keep = keep || v.Reason != ""
			}
		}
		if !take || keep {
			want = append(want, it.Entry().Raw...)
		}
	}
	require.Equal(t, want, kept)
	require.Equal(t, 3, taken.Series)
}

// TestOverflowIsAConsumer: the overflow aggregation as a stage folds a
// refused series into its __overflow__ series, and leaves alone a metric
// whose limit does not overflow.
func TestOverflowIsAConsumer(t *testing.T) {
	e, err := New(Config{Overflow: true, OverflowInterval: 10_000_000_000}, nil, nil)
	require.NoError(t, err)
	labelsOf := func(_, metric string) ([]string, bool) { return []string{"pod"}, metric == "req_total" }
	c := e.OverflowStage(labelsOf)

	ls := pod("req_total", "pod", "7", "svc", "x")
	v := c.Eval(&stage.Input{Tenant: "t", Labels: ls, Meta: stage.Metadata{Type: model.MetricTypeCounter}, WantLabels: true})
	require.Equal(t, stage.ActionAggregate, v.Action)
	require.Equal(t, `{__name__="req_total", pod="__overflow__", svc="x"}`, v.Labels.String())

	b, _ := batchOf(t, counter(ls, 1000, 3), counter(pod("other_total", "pod", "7"), 1000, 3))
	it := record.NewIter(b)
	require.True(t, it.Next())
	v = c.Consume(&stage.Input{Tenant: "t", WantLabels: true}, it.Entry())
	require.Equal(t, stage.ActionAggregate, v.Action)
	require.Equal(t, `{__name__="req_total", pod="__overflow__", svc="x"}`, v.Labels.String())
	require.True(t, it.Next())
	require.Equal(t, stage.Verdict{}, c.Consume(&stage.Input{Tenant: "t"}, it.Entry()), "other_total does not overflow")
	require.Len(t, e.StatsOf("t"), 1)
}

// TestConsumerVerdictsCounted: consumers' verdicts are counted per rule,
// action and mode in promgov_rule_series_total, like every stage's.
func TestConsumerVerdictsCounted(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e, err := NewEngine(Config{Rules: []RuleConfig{
		rule10s("sum", "req_total", nil),
		{Name: "shadow", Match: `req_total`, Without: []string{"svc"}, Interval: 10_000_000_000, Mode: ModeShadow},
		{Name: "copy", Match: `lat_seconds`, Without: []string{"pod"}, Interval: 10_000_000_000, KeepInput: true},
	}}, nil, reg)
	require.NoError(t, err)
	b, names := batchOf(t,
		counter(pod("req_total", "pod", "1", "svc", "x"), 1000, 1),
		counter(pod("req_total", "pod", "2", "svc", "x"), 1000, 1),
		counter(pod("lat_seconds", "pod", "1"), 1000, 1))
	e.Process("t", b, names)
	v := func(rule, action, mode string) float64 {
		vec, _ := reg.Gather()
		for _, mf := range vec {
			if mf.GetName() != "promgov_rule_series_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["rule"] == rule && l["action"] == action && l["mode"] == mode {
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	require.Equal(t, 2.0, v("sum", "aggregate", "enforce"))
	require.Equal(t, 2.0, v("shadow", "aggregate", "shadow"))
	require.Equal(t, 1.0, v("copy", "copy", "enforce"))
	require.Equal(t, 0.0, v("copy", "drop", "enforce"), "exported at zero from the start")
}
