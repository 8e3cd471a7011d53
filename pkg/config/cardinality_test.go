package config

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
)

// TestCardinalitySection: the ingesters' cardinality section and its
// limits come from the shared file, flags override them, and mistakes
// name the field.
func TestCardinalitySection(t *testing.T) {
	file := writeFile(t, `
backend:
  url: http://x/api/v1/write
cluster:
  sync_interval: 2s
cardinality:
  window: 30m
  limits:
    exempt: ["debug_.*"]
    defaults:
      max_series_per_metric: 1000
      max_series_per_metric_mode: shadow
    tenants:
      team-a:
        max_series_per_tenant: 5000
    metrics:
      - metric: "http_.*"
        max_series_per_metric: 20000
`)
	cfg, err := ParseIngester([]string{"--config.file=" + file, "--cardinality.limits.max-values-per-label=77"}, &bytes.Buffer{})
	require.NoError(t, err)
	c := cfg.Cardinality
	require.Equal(t, 30*time.Minute, c.Window)
	require.Equal(t, 6, c.SubWindows, "defaults survive for fields the file omits")
	require.True(t, c.Limits.ExemptOwnMetrics)
	require.Equal(t, int64(1000), c.Limits.Defaults.MaxSeriesPerMetric)
	require.Equal(t, cardinality.ModeShadow, c.Limits.Defaults.MaxSeriesPerMetricMode)
	require.Equal(t, int64(77), c.Limits.Defaults.MaxValuesPerLabel, "a flag overrides the file")
	require.Equal(t, int64(5000), *c.Limits.Tenants["team-a"].MaxSeriesPerTenant)
	require.Equal(t, "http_.*", c.Limits.Metrics[0].Metric)
	require.Equal(t, 2*time.Second, cfg.Cluster.SyncInterval)

	for name, tc := range map[string]struct {
		yaml, want string
	}{
		"bad mode":      {"cardinality:\n  limits:\n    defaults:\n      max_series_per_metric_mode: loud\n", "cardinality.limits"},
		"bad precision": {"cardinality:\n  precision: 30\n", "cardinality.precision"},
		"bad cluster":   {"cluster:\n  sync_interval: 0s\n", "cluster.sync_interval"},
	} {
		t.Run(name, func(t *testing.T) {
			f := writeFile(t, "backend:\n  url: http://x/api/v1/write\n"+tc.yaml)
			_, err := ParseIngester([]string{"--config.file=" + f}, &bytes.Buffer{})
			var ue *UsageError
			require.True(t, errors.As(err, &ue), "want a UsageError, got %v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
