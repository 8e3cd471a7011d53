package ingester

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/usage"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestPushCardinality: refused series never reach the WAL, the admitted
// rest does, and the answer counts both.
func TestPushCardinality(t *testing.T) {
	cfg := cardinality.DefaultConfig()
	cfg.Limits.Defaults = cardinality.Limits{MaxSeriesPerMetric: 2, MaxSeriesPerMetricMode: cardinality.ModeEnforce}
	tr, err := cardinality.New(cfg, cardinality.Options{})
	require.NoError(t, err)

	var (
		mu      sync.Mutex
		written []string
	)
	svc := NewService(ServiceDeps{Log: appendFunc(func(_ context.Context, b forward.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		written = append(written, names(t, &b.Request)...)
		return nil
	}), Cardinality: tr, Logger: slog.New(slog.DiscardHandler)})
	svc.Accept(true)

	push := func(series ...[2]string) *ingesterv1.PushResponse {
		b, err := rwBatch(series...).Marshal()
		require.NoError(t, err)
		resp, err := svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "team-a", Request: b})
		require.NoError(t, err)
		return resp
	}

	tests := []struct {
		name    string
		series  [][2]string
		written int64
		refused int64
		wal     []string
	}{
		{"under the limit", [][2]string{{"m", "1"}, {"m", "2"}}, 2, 0, []string{"m/1", "m/2"}},
		{"partly refused", [][2]string{{"m", "1"}, {"m", "3"}, {"n", "1"}}, 2, 1, []string{"m/1", "n/1"}},
		{"all refused", [][2]string{{"m", "4"}, {"m", "5"}}, 0, 2, nil},
		{"existing keep flowing", [][2]string{{"m", "2"}, {"m", "1"}}, 2, 0, []string{"m/2", "m/1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			written = nil
			mu.Unlock()
			resp := push(tc.series...)
			require.Equal(t, tc.written, resp.GetSamplesWritten())
			require.Equal(t, tc.refused, resp.GetRefusedSeries())
			if tc.refused > 0 {
				require.Contains(t, resp.GetRefusedMessage(), `max_series_per_metric=2 reached for metric "m" of tenant "team-a"`)
			} else {
				require.Empty(t, resp.GetRefusedMessage())
			}
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tc.wal, written, "the WAL holds exactly the admitted series")
		})
	}

	// The cluster service answers from the same tracker.
	a := NewAnalytics(AnalyticsDeps{Node: "n", State: tr, Access: usage.NewAccessStats(0, 0)})
	q, err := a.QueryMetrics(context.Background(), &ingesterv1.QueryMetricsRequest{Name: "m"})
	require.NoError(t, err)
	require.Len(t, q.GetMetrics(), 1)
	require.Equal(t, uint64(3), q.GetMetrics()[0].GetRefusedSeries())
}
