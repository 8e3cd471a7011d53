package ui

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
)

func TestSnapshotRanked(t *testing.T) {
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	now := time.Now()
	observe := func(tenant, name string, series, bytes int) {
		for j := range series {
			ls := labels.FromStrings(model.MetricNameLabel, name, "id", fmt.Sprint(j))
			tr.Observe(&cardinality.Series{Tenant: tenant, Metric: name, Labels: ls, Samples: 1, Bytes: bytes}, now)
		}
	}
	observe("a", "Big_Total", 30, 1)
	observe("a", "small_total", 2, 1000)
	observe("b", "mid_total", 10, 1)
	s := NewSnapshot(tr, time.Hour, nil)
	ctx := context.Background()
	names := func(rows []cardinality.MetricCardinality) (out []string) {
		for _, r := range rows {
			out = append(out, r.Tenant+"/"+r.Name)
		}
		return out
	}
	for name, tc := range map[string]struct {
		tenant, by, filter string
		limit, total       int
		want               []string
	}{
		"by series":            {"", cardinality.SortSeries, "", -1, 3, []string{"a/Big_Total", "b/mid_total", "a/small_total"}},
		"by bytes":             {"", SortBytesRate, "", -1, 3, []string{"a/small_total", "a/Big_Total", "b/mid_total"}},
		"unknown order":        {"", "nonsense", "", 1, 3, []string{"a/Big_Total"}},
		"one tenant":           {"a", cardinality.SortSeries, "", 1, 2, []string{"a/Big_Total"}},
		"filter ignores case":  {"", cardinality.SortSeries, "big", -1, 1, []string{"a/Big_Total"}},
		"filter counts beyond": {"", cardinality.SortSeries, "_total", 1, 3, []string{"a/Big_Total"}},
		"nothing matches":      {"c", cardinality.SortSeries, "", 10, 0, nil},
	} {
		t.Run(name, func(t *testing.T) {
			rows, total, err := s.Ranked(ctx, tc.tenant, tc.by, tc.filter, tc.limit)
			require.NoError(t, err)
			require.Equal(t, tc.want, names(rows))
			require.Equal(t, tc.total, total)
		})
	}
	ten, err := s.Tenants(ctx, cardinality.Query{Limit: -1})
	require.NoError(t, err)
	require.Len(t, ten, 2)
	require.Equal(t, "a", ten[0].Tenant)

	// The snapshot is what the pages read until it is refreshed or stale.
	observe("b", "new_total", 100, 1)
	rows, _, err := s.Ranked(ctx, "", cardinality.SortSeries, "", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"a/Big_Total"}, names(rows), "cached until refreshed")
	require.NoError(t, s.Refresh(ctx))
	rows, _, err = s.Ranked(ctx, "", cardinality.SortSeries, "", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"b/new_total"}, names(rows))
	observe("b", "newer_total", 200, 1)
	s.now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	rows, _, err = s.Ranked(ctx, "", cardinality.SortSeries, "", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"b/newer_total"}, names(rows), "stale after twice the interval")

	// Labels and single metrics come from the source.
	rows, err = s.Metrics(ctx, cardinality.Query{Limit: 1, Labels: true})
	require.NoError(t, err)
	require.NotEmpty(t, rows[0].Labels)
}

// BenchmarkSnapshotRefresh is the background cost of the pages' snapshot:
// one refresh over 100k tracked metrics, every --ui.snapshot-interval.
func BenchmarkSnapshotRefresh(b *testing.B) {
	c := newTestCluster(b, 100_000)
	s := NewSnapshot(c.tracker, time.Minute, nil)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		require.NoError(b, s.Refresh(context.Background()))
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
