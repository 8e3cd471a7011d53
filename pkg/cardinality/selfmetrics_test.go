package cardinality

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestSelfMetricsBoundTenants: tenant IDs come from request headers, so
// 3,000 distinct tenants must not give 3,000 tenants' worth of series.
func TestSelfMetricsBoundTenants(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.MetricsMaxTenants = 5
	cfg.Limits.Defaults.MaxSeriesPerMetric = 1
	cfg.Limits.Defaults.MaxSeriesPerMetricMode = ModeEnforce
	reg := prometheus.NewRegistry()
	tr, err := New(cfg, Options{Now: c.now, Registerer: reg})
	require.NoError(t, err)
	for i := range 3000 {
		tr.Observe(mkSeries(fmt.Sprintf("tenant-%d", i), "m", 0), c.now())
	}
	// A second series of "m" is over the limit: tenant-0's refusal is its
	// own, tenant-2999's is counted under __other__.
	tr.Observe(mkSeries("tenant-0", "m", 1), c.now())
	tr.Observe(mkSeries("tenant-2999", "m", 1), c.now())
	// 3 limit kinds × 2 modes × (5 tenants + __other__).
	require.Equal(t, 3*2*6, testutil.CollectAndCount(reg, "promgov_cardinality_refusals_total"))
	require.Equal(t, 1.0, testutil.ToFloat64(tr.m.refusals.WithLabelValues(LimitSeriesPerMetric, "tenant-0", string(ModeEnforce))))
	require.Equal(t, 1.0, testutil.ToFloat64(tr.m.refusals.WithLabelValues(LimitSeriesPerMetric, OtherTenant, string(ModeEnforce))))
	require.Equal(t, 3000.0, testutil.ToFloat64(tr.m.tenants), "every tenant is still tracked")
}
