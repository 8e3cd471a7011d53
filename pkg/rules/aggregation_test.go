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
