package ingester

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func newTestAnalytics(t *testing.T) (*Analytics, *cardinality.Tracker) {
	t.Helper()
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	now := time.Now()
	for m := range 20 {
		for i := range 5 {
			ls := labels.FromStrings(model.MetricNameLabel, "m"+strconv.Itoa(m), "id", strconv.Itoa(i))
			tr.Observe(&cardinality.Series{Tenant: "t", Metric: "m" + strconv.Itoa(m), Labels: ls, Samples: 1}, now)
		}
	}
	return NewAnalytics(AnalyticsDeps{Node: "node-1", State: tr, Access: usage.NewAccessStats(0, 0)}), tr
}

func TestAnalyticsQuery(t *testing.T) {
	a, _ := newTestAnalytics(t)
	ctx := context.Background()
	tests := map[string]struct {
		query  func() (rows int, first string, err error)
		code   codes.Code
		rows   int
		first  string // the first row's name or tenant
		labels bool
	}{
		"metrics": {query: func() (int, string, error) {
			r, err := a.QueryMetrics(ctx, &ingesterv1.QueryMetricsRequest{Query: &ingesterv1.CardinalityQuery{Limit: 1, Sort: "series"}})
			return len(r.GetMetrics()), first(r.GetMetrics()), err
		}, rows: 1},
		"one metric with labels": {query: func() (int, string, error) {
			r, err := a.QueryMetrics(ctx, &ingesterv1.QueryMetricsRequest{Name: "m3"})
			if len(r.GetMetrics()) == 1 && len(r.GetMetrics()[0].GetLabels()) == 0 {
				return 0, "", errors.New("no labels")
			}
			return len(r.GetMetrics()), first(r.GetMetrics()), err
		}, rows: 1, first: "m3"},
		"unknown metric": {query: func() (int, string, error) {
			r, err := a.QueryMetrics(ctx, &ingesterv1.QueryMetricsRequest{Name: "nope"})
			return len(r.GetMetrics()), "", err
		}},
		"tenants": {query: func() (int, string, error) {
			r, err := a.QueryTenants(ctx, &ingesterv1.QueryTenantsRequest{Query: &ingesterv1.CardinalityQuery{Tenant: "t"}})
			if len(r.GetTenants()) == 0 {
				return 0, "", err
			}
			return len(r.GetTenants()), r.GetTenants()[0].GetTenant(), err
		}, rows: 1, first: "t"},
		"tenant of the request": {query: func() (int, string, error) {
			r, err := a.QueryTenants(ctx, &ingesterv1.QueryTenantsRequest{Query: &ingesterv1.CardinalityQuery{Tenant: "other"}})
			return len(r.GetTenants()), "", err
		}},
		"bad sort": {query: func() (int, string, error) {
			_, err := a.QueryMetrics(ctx, &ingesterv1.QueryMetricsRequest{Query: &ingesterv1.CardinalityQuery{Sort: "nope"}})
			return 0, "", err
		}, code: codes.InvalidArgument},
		"bad sort of tenants": {query: func() (int, string, error) {
			_, err := a.QueryTenants(ctx, &ingesterv1.QueryTenantsRequest{Query: &ingesterv1.CardinalityQuery{Sort: "nope"}})
			return 0, "", err
		}, code: codes.InvalidArgument},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rows, firstName, err := tc.query()
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			if err != nil {
				return
			}
			require.Equal(t, tc.rows, rows)
			if tc.first != "" {
				require.Equal(t, tc.first, firstName)
			}
		})
	}
}

func first(ms []*ingesterv1.MetricCardinality) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[0].GetName()
}

func TestAnalyticsListAndExport(t *testing.T) {
	a, tr := newTestAnalytics(t)
	ctx := context.Background()
	const count = 7
	seen := 0
	for part := range uint32(count) {
		resp, err := a.ListMetrics(ctx, &ingesterv1.ListMetricsRequest{PartitionCount: count, Partitions: []uint32{part}})
		require.NoError(t, err)
		for _, k := range resp.GetMetrics() {
			require.Equal(t, uint64(part), xxhash.Sum64(ring.Key(nil, k.GetTenant(), k.GetMetric()))%count)
		}
		seen += len(resp.GetMetrics())
	}
	require.Equal(t, 20, seen, "every metric is in exactly one partition")
	_, err := a.ListMetrics(ctx, &ingesterv1.ListMetricsRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	resp, err := a.ExportMetric(ctx, &ingesterv1.ExportMetricRequest{Tenant: "t", Metric: "m1"})
	require.NoError(t, err)
	require.True(t, resp.GetFound())
	require.Len(t, tr.TrackedMetrics(), 20, "not forgotten unless asked")

	resp, err = a.ExportMetric(ctx, &ingesterv1.ExportMetricRequest{Tenant: "t", Metric: "m1", Forget: true})
	require.NoError(t, err)
	require.True(t, resp.GetFound())
	require.NotEmpty(t, resp.GetState())
	require.Len(t, tr.TrackedMetrics(), 19)

	resp, err = a.ExportMetric(ctx, &ingesterv1.ExportMetricRequest{Tenant: "t", Metric: "m1"})
	require.NoError(t, err)
	require.False(t, resp.GetFound())

	other, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	ten, met, err := other.ImportMetric(func() []byte {
		r, err := a.ExportMetric(ctx, &ingesterv1.ExportMetricRequest{Tenant: "t", Metric: "m2"})
		require.NoError(t, err)
		return r.GetState()
	}(), time.Now())
	require.NoError(t, err)
	require.Equal(t, []string{"t", "m2"}, []string{ten, met})
}

func TestAnalyticsTenantSketches(t *testing.T) {
	a, _ := newTestAnalytics(t)
	resp, err := a.TenantSketches(context.Background(), &ingesterv1.TenantSketchesRequest{Node: "peer"})
	require.NoError(t, err)
	require.Equal(t, "node-1", resp.GetNode())
	require.Len(t, resp.GetSketches(), 1)
	est, err := cardinality.MergeSketches(resp.GetSketches()[0].GetSketch())
	require.NoError(t, err)
	require.Equal(t, uint64(100), est)
}

// TestServerWithoutCluster: an ingester server without the cluster
// service answers its calls Unimplemented and still takes pushes.
func TestServerWithoutCluster(t *testing.T) {
	_, _, conn, _ := startServer(t, appendFunc(func(context.Context, forward.Batch) error { return nil }))
	c := ingesterv1.NewClusterServiceClient(conn)
	ctx := context.Background()
	_, err := c.QueryMetrics(ctx, &ingesterv1.QueryMetricsRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
	_, err = c.TenantSketches(ctx, &ingesterv1.TenantSketchesRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
	_, err = c.ListMetrics(ctx, &ingesterv1.ListMetricsRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
	_, err = c.ExportMetric(ctx, &ingesterv1.ExportMetricRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
}

// TestAnalyticsGetAccess: one tenant's statistics, or every tenant's
// merged, as typed messages.
func TestAnalyticsGetAccess(t *testing.T) {
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	acc := usage.NewAccessStats(100, 10)
	a := NewAnalytics(AnalyticsDeps{Node: "n", State: tr, Access: acc})
	ctx := context.Background()
	for _, tenant := range []string{"t1", "t2"} {
		_, err := a.RecordAccess(ctx, &ingesterv1.RecordAccessRequest{Tenant: tenant, Metrics: []*ingesterv1.MetricAccess{
			{Metric: "up", Stats: &ingesterv1.AccessStats{Count: 1, Users: []string{tenant + "-user"}}},
		}})
		require.NoError(t, err)
	}
	one, err := a.GetAccess(ctx, &ingesterv1.GetAccessRequest{Tenant: "t1"})
	require.NoError(t, err)
	require.Len(t, one.GetMetrics(), 1)
	require.Equal(t, uint64(1), one.GetMetrics()[0].GetStats().GetCount())
	all, err := a.GetAccess(ctx, &ingesterv1.GetAccessRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetMetrics(), 1)
	require.Equal(t, uint64(2), all.GetMetrics()[0].GetStats().GetCount())
	require.Equal(t, []string{"t1-user", "t2-user"}, all.GetMetrics()[0].GetStats().GetUsers())
	none, err := a.GetAccess(ctx, &ingesterv1.GetAccessRequest{Tenant: "nobody"})
	require.NoError(t, err)
	require.Empty(t, none.GetMetrics())

	_, err = a.RecordAccess(ctx, &ingesterv1.RecordAccessRequest{Metrics: []*ingesterv1.MetricAccess{{}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}
