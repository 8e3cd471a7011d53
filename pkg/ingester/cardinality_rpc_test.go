package ingester

import (
	"context"
	"net/http"
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
	"github.com/promgov/promgov/pkg/ring"
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
	return NewAnalytics("node-1", tr, cardinality.NewHandler(tr, "X-Scope-OrgID", nil), nil), tr
}

func TestAnalyticsQuery(t *testing.T) {
	a, _ := newTestAnalytics(t)
	tests := []struct {
		name   string
		req    *ingesterv1.QueryRequest
		code   codes.Code
		status int32
		body   string
	}{
		{"metrics", &ingesterv1.QueryRequest{Path: cardinality.PathMetrics, RawQuery: "limit=1&sort=series"}, codes.OK, 200, `"status":"success"`},
		{"one metric", &ingesterv1.QueryRequest{Path: cardinality.PathMetrics + "/m3"}, codes.OK, 200, `"labels"`},
		{"unknown metric", &ingesterv1.QueryRequest{Path: cardinality.PathMetrics + "/nope"}, codes.OK, 404, `not_found`},
		{"tenants", &ingesterv1.QueryRequest{Path: cardinality.PathTenants, Tenant: "t"}, codes.OK, 200, `"tenant":"t"`},
		{"tenant of the request", &ingesterv1.QueryRequest{Path: cardinality.PathTenants, Tenant: "other"}, codes.OK, 200, `"data":[]`},
		{"bad parameter", &ingesterv1.QueryRequest{Path: cardinality.PathMetrics, RawQuery: "limit=x"}, codes.OK, 400, `bad_data`},
		{"outside the API", &ingesterv1.QueryRequest{Path: "/metrics"}, codes.InvalidArgument, 0, ""},
		{"escaping the API", &ingesterv1.QueryRequest{Path: "/promgov/api/v1/../../metrics"}, codes.InvalidArgument, 0, ""},
		{"escaping the legacy API", &ingesterv1.QueryRequest{Path: "/api/v1/../../metrics"}, codes.InvalidArgument, 0, ""},
		{"unknown path", &ingesterv1.QueryRequest{Path: "/promgov/api/v1/nothing"}, codes.OK, 404, ""},
		{"legacy path of the previous release", &ingesterv1.QueryRequest{Path: "/api/v1/cardinality/tenants"}, codes.OK, 200, `"tenant":"t"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := a.Query(context.Background(), tc.req)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			if err != nil {
				return
			}
			require.Equal(t, tc.status, resp.GetStatusCode(), string(resp.GetBody()))
			require.Contains(t, string(resp.GetBody()), tc.body)
		})
	}
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

func TestAnalyticsNoHandler(t *testing.T) {
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	resp, err := NewAnalytics("n", tr, nil, nil).Query(context.Background(), &ingesterv1.QueryRequest{Path: cardinality.PathTenants})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusNotFound), resp.GetStatusCode())
}
