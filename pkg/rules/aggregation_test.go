package rules

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/aggregate"
)

// TestRulesTestShowsAggregations: the rules test API shows what an
// aggregation rule does to the series the rules output.
func TestRulesTestShowsAggregations(t *testing.T) {
	eng, err := Compile(Config{}, nil)
	require.NoError(t, err)
	agg, err := aggregate.New(aggregate.Config{Rules: []aggregate.RuleConfig{
		{Name: "by-svc", Match: "http_requests_total", By: []string{"svc"}, Interval: model.Duration(30 * time.Second)},
		{Name: "g", Match: "temp", Without: []string{"pod"}, Interval: model.Duration(time.Minute), Type: aggregate.TypeCounter},
	}}, nil, nil)
	require.NoError(t, err)
	req := TestRequest{Tenant: "t", Series: []TestSeries{
		{Series: `http_requests_total{pod="a", svc="x"}`, Type: "counter"},
		{Series: `temp{pod="a"}`, Type: "gauge"},
		{Series: `other{pod="a"}`},
	}}
	data, err := runTestRequest(&Ruleset{Engine: eng}, req, agg)
	require.NoError(t, err)
	require.Equal(t, []aggregate.Effect{{Rule: "by-svc", Mode: aggregate.ModeEnforce, Action: aggregate.EffectAggregated,
		Outputs: []string{`{__name__="svc:http_requests_total:sum", svc="x"}`}, Interval: "30s"}}, data.Results[0].Aggregations)
	require.Equal(t, []aggregate.Effect{{Rule: "g", Mode: aggregate.ModeEnforce, Action: aggregate.EffectPassedThrough,
		Reason: aggregate.ReasonWrongType, Interval: "1m"}}, data.Results[1].Aggregations)
	require.Empty(t, data.Results[2].Aggregations)
}

// TestRulesTestCandidateAggregations: a candidate configuration's
// aggregations: replace the running ones in the rules test API; without
// the key the running ones are shown; invalid ones are an error naming the
// field.
func TestRulesTestCandidateAggregations(t *testing.T) {
	eng, err := Compile(Config{}, nil)
	require.NoError(t, err)
	running, err := aggregate.New(aggregate.Config{Rules: []aggregate.RuleConfig{
		{Name: "running", Match: "http_requests_total", By: []string{"svc"}, Interval: model.Duration(30 * time.Second)},
	}}, nil, nil)
	require.NoError(t, err)
	series := []TestSeries{{Series: `http_requests_total{pod="a", svc="x"}`, Type: "counter"}}
	for name, tc := range map[string]struct {
		rules string
		want  []aggregate.Effect
		err   string
	}{
		"no key: the running rules": {rules: "rules: []\n",
			want: []aggregate.Effect{{Rule: "running", Mode: aggregate.ModeEnforce, Action: aggregate.EffectAggregated,
				Outputs: []string{`{__name__="svc:http_requests_total:sum", svc="x"}`}, Interval: "30s"}}},
		"candidate rules replace them": {
			rules: "rules: []\naggregations:\n- {name: cand, match: http_requests_total, without: [pod], interval: 1m, mode: shadow}\n",
			want: []aggregate.Effect{{Rule: "cand", Mode: aggregate.ModeShadow, Action: aggregate.EffectAggregated,
				Outputs: []string{`{__name__="http_requests_total:sum_without_pod", svc="x"}`}, Interval: "1m"}}},
		"an empty list: none":  {rules: "aggregations: []\n"},
		"unknown field":        {rules: "aggregations:\n- {name: c, match: x, bye: [pod], interval: 1m}\n", err: "field bye not found"},
		"by and without named": {rules: "aggregations:\n- {name: c, match: x, by: [a], without: [b], interval: 1m}\n", err: "without"},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := runTestRequest(&Ruleset{Engine: eng}, TestRequest{Tenant: "t", Series: series, Rules: tc.rules}, running)
			if tc.err != "" {
				require.ErrorContains(t, err, "candidate aggregations:")
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.True(t, data.Ruleset.Candidate)
			require.Equal(t, tc.want, data.Results[0].Aggregations)
		})
	}
}

// FuzzCandidateAggregations: any candidate document is compiled or
// refused with an error, never a panic.
func FuzzCandidateAggregations(f *testing.F) {
	f.Add("aggregations:\n- {name: c, match: x, without: [pod], interval: 1m}\n")
	f.Add("aggregations: []\n")
	f.Add("aggregations: {a: 1}\n")
	f.Add("rules: []\n")
	f.Fuzz(func(t *testing.T, doc string) {
		agg, found, err := candidateAggregations([]byte(doc))
		if err != nil || !found {
			require.Nil(t, agg)
		}
	})
}
