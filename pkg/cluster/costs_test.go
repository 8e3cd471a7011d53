package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
)

func TestMetricCosts(t *testing.T) {
	tests := map[string]struct {
		rows []cardinality.MetricCardinality
		want []usage.MetricCost
	}{
		"one tenant": {
			rows: []cardinality.MetricCardinality{{Name: "m", Tenant: "a", Series: 100, SamplesRate: 10, Labels: []cardinality.LabelCardinality{
				{Name: "pod", Values: 100, SeriesWithout: 10},
				{Name: "job", Values: 1, SeriesWithout: 100},
			}}},
			want: []usage.MetricCost{{Name: "m", Series: 100, SamplesRate: 10, Labels: []usage.LabelCost{
				{Name: "job", Values: 1, SeriesWithout: 100},
				{Name: "pod", Values: 100, SeriesWithout: 10},
			}}},
		},
		"tenants add their savings": {
			rows: []cardinality.MetricCardinality{
				{Name: "m", Tenant: "a", Series: 100, SamplesRate: 10, Labels: []cardinality.LabelCardinality{{Name: "pod", Values: 100, SeriesWithout: 10}}},
				{Name: "m", Tenant: "b", Series: 50, SamplesRate: 5, Labels: []cardinality.LabelCardinality{{Name: "pod", Values: 20, SeriesWithout: 50}}},
			},
			want: []usage.MetricCost{{Name: "m", Series: 150, SamplesRate: 15, Labels: []usage.LabelCost{
				{Name: "pod", Values: 100, SeriesWithout: 60},
			}}},
		},
		"unknown in one tenant is unknown": {
			rows: []cardinality.MetricCardinality{
				{Name: "m", Tenant: "a", Series: 100, Labels: []cardinality.LabelCardinality{{Name: "pod", Values: 100, SeriesWithout: 10}}},
				{Name: "m", Tenant: "b", Series: 50, Labels: []cardinality.LabelCardinality{{Name: "pod", Values: 20}}},
			},
			want: []usage.MetricCost{{Name: "m", Series: 150, Labels: []usage.LabelCost{{Name: "pod", Values: 100}}}},
		},
		"an estimate above the series saves nothing": {
			rows: []cardinality.MetricCardinality{{Name: "m", Tenant: "a", Series: 100, Labels: []cardinality.LabelCardinality{{Name: "job", Values: 1, SeriesWithout: 102}}}},
			want: []usage.MetricCost{{Name: "m", Series: 100, Labels: []usage.LabelCost{{Name: "job", Values: 1, SeriesWithout: 100}}}},
		},
		"limits: the most used tenant's share, refusals summed": {
			rows: []cardinality.MetricCardinality{
				{Name: "m", Tenant: "a", Series: 80, RefusedSeries: 20, Limit: 100},
				{Name: "m", Tenant: "b", Series: 30, Limit: 100},
				{Name: "m", Tenant: "c", Series: 500}, // unlimited
			},
			want: []usage.MetricCost{{Name: "m", Series: 610, LimitUse: 1.0, RefusedSeries: 20}},
		},
		"metrics sorted by name, no labels": {
			rows: []cardinality.MetricCardinality{{Name: "b", Series: 1}, {Name: "a", Series: 2}},
			want: []usage.MetricCost{{Name: "a", Series: 2}, {Name: "b", Series: 1}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, metricCosts(tc.rows))
		})
	}
}

// TestClusterCostsQuietWhileStarting: before any ingester is ACTIVE (every
// distributor start) the usage manager's cost round finds no ingester to
// ask; that is expected and must not log a warning.
func TestClusterCostsQuietWhileStarting(t *testing.T) {
	cfg := ring.DefaultConfig()
	cfg.BindAddress = "127.0.0.1:0"
	cfg.NodeName = "distributor-1"
	rg, err := ring.New(cfg, ring.RoleDistributor, "", nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, rg.Close(context.Background())) }()
	pool := NewPool()
	defer pool.Close()
	var logs bytes.Buffer
	c := NewCosts(NewFanOut(DefaultConfig(), FanOutDeps{Members: rg, Clients: pool}), time.Second,
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	require.Empty(t, c.MetricCosts())
	require.Empty(t, logs.String())
}
