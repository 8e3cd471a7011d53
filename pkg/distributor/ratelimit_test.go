package distributor

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/ratelimit"
)

// TestRateLimitAnswers429: a tenant over its limit gets 429 with
// Retry-After and nothing of the request is written; another tenant is
// written.
func TestRateLimitAnswers429(t *testing.T) {
	tc := newTestCluster(t, 2, 5e9)
	tc.with(func(d *Deps) {
		d.RateLimiter = ratelimit.New(ratelimit.Config{
			Tenants: map[string]ratelimit.Limit{"small": {SamplesPerSecond: 1, Burst: 100}},
		}, nil, prometheus.NewRegistry())
	})
	body := v1Body(t, manyMetrics(20)) // 60 samples

	w := post(t, tc.dist, "application/x-protobuf", body, "small")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	written := 0
	for _, r := range tc.recorders {
		written += len(r.seriesNames())
	}
	require.Equal(t, 60, written)

	w = post(t, tc.dist, "application/x-protobuf", body, "small")
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	// 20 samples missing at 1/s: 20s, less what refilled since the first.
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 20, retry, 2)
	require.Contains(t, w.Body.String(), `tenant "small" is over its ingestion rate limit`)
	after := 0
	for _, r := range tc.recorders {
		after += len(r.seriesNames())
	}
	require.Equal(t, written, after, "nothing of a limited request is written")

	w = post(t, tc.dist, "application/x-protobuf", body, "other")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
}
