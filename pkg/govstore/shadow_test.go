package govstore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/rules/ruleconfig"
	"github.com/promgov/promgov/pkg/usage"
)

func mustDoc(t *testing.T, y string) Document {
	t.Helper()
	d, err := ParseDocument([]byte(y))
	require.NoError(t, err)
	return d
}

const (
	shA  = "  - {name: a, relabel_configs: [{source_labels: [__name__], regex: a_.*, action: drop}]}\n"
	shA2 = "  - {name: a, relabel_configs: [{source_labels: [__name__], regex: a2_.*, action: drop}]}\n"
	shB  = "  - {name: b, relabel_configs: [{source_labels: [__name__], regex: b_.*, action: drop}]}\n"
	shC  = "  - {name: c, relabel_configs: [{source_labels: [__name__], regex: c_.*, action: drop}]}\n"
)

func names(d Document) []string {
	var out []string
	for _, r := range d.Rules {
		s := r.Name
		if r.Mode == ruleconfig.ModeShadow {
			s += "(shadow)"
		}
		out = append(out, s)
	}
	return out
}

func TestWithShadow(t *testing.T) {
	tests := map[string]struct {
		active, candidate string
		rules             []string
		shadowRules       []string
		limits, drop      bool
		notShadowed       int
	}{
		"unchanged rules do not run twice": {
			active: "rules:\n" + shA + shB, candidate: "rules:\n" + shA + shB,
			rules: []string{"a", "b"}, shadowRules: []string{},
		},
		"a changed rule runs in shadow before its active self, on the same input": {
			active: "rules:\n" + shA + shB, candidate: "rules:\n" + shA2 + shB,
			rules: []string{"a@v7(shadow)", "a", "b"}, shadowRules: []string{"a@v7"},
		},
		"a changed second rule sees what the first left": {
			active: "rules:\n" + shB + shA, candidate: "rules:\n" + shB + shA2,
			rules: []string{"b", "a@v7(shadow)", "a"}, shadowRules: []string{"a@v7"},
		},
		"a new rule runs at its place in the candidate": {
			active: "rules:\n" + shA + shB, candidate: "rules:\n" + shC + shA + shB,
			rules: []string{"c@v7(shadow)", "a", "b"}, shadowRules: []string{"c@v7"},
		},
		"a new rule after a kept one": {
			active: "rules:\n" + shA + shB, candidate: "rules:\n" + shA + shC + shB,
			rules: []string{"a", "c@v7(shadow)", "b"}, shadowRules: []string{"c@v7"},
		},
		"a removed rule keeps running and is reported": {
			active: "rules:\n" + shA + shB, candidate: "rules:\n" + shB,
			rules: []string{"a", "b"}, shadowRules: []string{}, notShadowed: 1,
		},
		"limits run in shadow when the active version enforces none": {
			active:      "cardinality: {limits: {defaults: {max_series_per_metric: 100, max_series_per_metric_mode: shadow}}}",
			candidate:   "cardinality: {limits: {defaults: {max_series_per_metric: 50}, metrics: [{metric: foo, max_series_per_metric: 10}], tenants: {t: {max_series_per_tenant: 5}}}}",
			shadowRules: []string{}, limits: true,
		},
		"limits cannot shadow enforced ones": {
			active:      "cardinality: {limits: {defaults: {max_series_per_metric: 100}}}",
			candidate:   "cardinality: {limits: {defaults: {max_series_per_metric: 50}}}",
			shadowRules: []string{}, notShadowed: 1,
		},
		"an override that enforces counts": {
			active:      "cardinality: {limits: {metrics: [{metric: foo, max_series_per_metric: 10}]}}",
			candidate:   "cardinality: {limits: {defaults: {max_series_per_metric: 50}}}",
			shadowRules: []string{}, notShadowed: 1,
		},
		"drop policy off to enforce runs in shadow": {
			active: "", candidate: "usage: {drop_unused: {mode: enforce, grace_period: 1h}}",
			shadowRules: []string{}, drop: true,
		},
		"an enforced drop policy cannot be shadowed": {
			active: "usage: {drop_unused: {mode: enforce, grace_period: 1h}}", candidate: "usage: {drop_unused: {mode: enforce, grace_period: 2h}}",
			shadowRules: []string{}, notShadowed: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			active, cand := mustDoc(t, tc.active), mustDoc(t, tc.candidate)
			merged, run := WithShadow(active, cand, 7)
			require.NoError(t, merged.Validate(), "the merged document is valid")
			require.Equal(t, tc.rules, names(merged))
			require.Equal(t, tc.shadowRules, run.Rules)
			require.Equal(t, tc.limits, run.Limits)
			require.Equal(t, tc.drop, run.DropUnused)
			require.Len(t, run.NotShadowed, tc.notShadowed, "%v", run.NotShadowed)
			if !tc.limits {
				require.Equal(t, active.Cardinality.Limits, merged.Cardinality.Limits, "enforcement unchanged")
			} else {
				l := merged.Cardinality.Limits
				require.Equal(t, int64(50), l.Defaults.MaxSeriesPerMetric)
				require.Equal(t, cardinality.ModeShadow, l.Defaults.MaxSeriesPerMetricMode)
				require.Equal(t, cardinality.ModeShadow, l.Metrics[0].MaxSeriesPerMetricMode)
				require.Equal(t, cardinality.ModeShadow, l.Tenants["t"].MaxSeriesPerTenantMode)
				require.False(t, enforcesLimits(l))
			}
			if tc.drop {
				require.Equal(t, usage.ModeShadow, merged.Usage.DropUnused.Mode)
			} else {
				require.Equal(t, active.Usage.DropUnused, merged.Usage.DropUnused)
			}
		})
	}
}

func TestDocumentAggregations(t *testing.T) {
	none := mustDoc(t, "rules: []\n")
	require.Nil(t, none.Aggregations, "no key: each ingester's file stays in force")
	c, err := none.Canonical()
	require.NoError(t, err)
	require.NotContains(t, string(c), "aggregations", "documents without aggregations hash as before")

	empty := mustDoc(t, "aggregations: []\n")
	require.NotNil(t, empty.Aggregations)
	require.Empty(t, *empty.Aggregations)
	c, err = empty.Canonical()
	require.NoError(t, err)
	require.Contains(t, string(c), "aggregations: []", "an explicit empty list removes every rule and survives canonicalisation")

	_, err = ParseDocument([]byte("aggregations: [{name: a, match: m, by: [x], without: [y], interval: 1m}]\n"))
	require.ErrorContains(t, err, "aggregations[0] (a)")
}

func TestWithShadowAggregations(t *testing.T) {
	const aggA = "  - {name: a, match: m_total, without: [pod], interval: 1m}\n"
	const aggA2 = "  - {name: a, match: m_total, without: [pod, instance], interval: 1m}\n"
	const aggB = "  - {name: b, match: n_total, without: [pod], interval: 1m}\n"
	aggNames := func(d Document) []string {
		var out []string
		if d.Aggregations == nil {
			return nil
		}
		for _, r := range *d.Aggregations {
			out = append(out, r.Name+"("+string(r.Mode)+")")
		}
		return out
	}
	tests := map[string]struct {
		active, candidate string
		want              []string
		shadow            []string
		notShadowed       int
	}{
		"unchanged":                      {active: "aggregations:\n" + aggA, candidate: "aggregations:\n" + aggA, want: []string{"a()"}},
		"changed and added":              {active: "aggregations:\n" + aggA, candidate: "aggregations:\n" + aggA2 + aggB, want: []string{"a()", "a@v7(shadow)", "b@v7(shadow)"}, shadow: []string{"a@v7", "b@v7"}},
		"removed":                        {active: "aggregations:\n" + aggA + aggB, candidate: "aggregations:\n" + aggA, want: []string{"a()", "b()"}, notShadowed: 1},
		"candidate without the key":      {active: "aggregations:\n" + aggA, candidate: "rules: []", want: []string{"a()"}},
		"active leaves them to the file": {active: "rules: []", candidate: "aggregations:\n" + aggB, notShadowed: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			merged, run := WithShadow(mustDoc(t, tc.active), mustDoc(t, tc.candidate), 7)
			require.NoError(t, merged.Validate())
			require.Equal(t, tc.want, aggNames(merged))
			require.Equal(t, tc.shadow, run.Aggregations)
			require.Len(t, run.NotShadowed, tc.notShadowed, "%v", run.NotShadowed)
		})
	}
}
