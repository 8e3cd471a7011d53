package cardinality

import (
	"flag"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigFlagsMatchDefaults(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags("cardinality.", fs)
	d := DefaultConfig()
	d.Limits.Defaults.MaxSeriesPerMetricMode = ModeEnforce
	d.Limits.Defaults.MaxValuesPerLabelMode = ModeEnforce
	d.Limits.Defaults.MaxSeriesPerTenantMode = ModeEnforce
	require.Equal(t, d, c)
	require.NoError(t, c.Validate())

	require.NoError(t, fs.Parse([]string{
		"-cardinality.precision=12", "-cardinality.limits.max-series-per-metric=7",
		"-cardinality.limits.max-series-per-tenant-mode=shadow", "-cardinality.label-drop-estimates=false",
	}))
	require.Equal(t, uint8(12), c.Precision)
	require.False(t, c.LabelDropEstimates)
	require.Equal(t, int64(7), c.Limits.Defaults.MaxSeriesPerMetric)
	require.Equal(t, ModeShadow, c.Limits.Defaults.MaxSeriesPerTenantMode)
	require.Error(t, fs.Parse([]string{"-cardinality.limits.max-values-per-label-mode=loud"}))
}

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Config)
		field  string
	}{
		"defaults":          {func(*Config) {}, ""},
		"zero window":       {func(c *Config) { c.Window = 0 }, "window:"},
		"sub-windows":       {func(c *Config) { c.SubWindows = 0 }, "sub_windows:"},
		"tiny sub-window":   {func(c *Config) { c.Window = 3 * time.Second; c.SubWindows = 6 }, "sub_windows:"},
		"precision":         {func(c *Config) { c.Precision = 19 }, "precision:"},
		"label precision":   {func(c *Config) { c.LabelPrecision = 3 }, "label_precision:"},
		"metrics cap":       {func(c *Config) { c.MaxTrackedMetrics = 0 }, "max_tracked_metrics:"},
		"snapshot interval": {func(c *Config) { c.SnapshotPath = "x"; c.SnapshotInterval = 0 }, "snapshot_interval:"},
		"negative limit":    {func(c *Config) { c.Limits.Defaults.MaxSeriesPerMetric = -1 }, "defaults.max_series_per_metric:"},
		"bad mode":          {func(c *Config) { c.Limits.Defaults.MaxValuesPerLabelMode = "on" }, "defaults.max_values_per_label_mode:"},
		"tenant override":   {func(c *Config) { c.Limits.Tenants = map[string]LimitOverrides{"a": {MaxSeriesPerTenant: ptr(-2)}} }, `tenants["a"].max_series_per_tenant:`},
		"metric regex":      {func(c *Config) { c.Limits.Metrics = []MetricOverride{{Metric: "("}} }, "metrics[0].metric:"},
		"metric empty":      {func(c *Config) { c.Limits.Metrics = []MetricOverride{{}} }, "metrics[0].metric:"},
		"tenant in metric": {func(c *Config) {
			c.Limits.Metrics = []MetricOverride{{Metric: "x", LimitOverrides: LimitOverrides{MaxSeriesPerTenant: ptr(1)}}}
		}, "metrics[0].max_series_per_tenant:"},
		"exempt regex":               {func(c *Config) { c.Limits.Exempt = []string{"ok", "["} }, "exempt[1]:"},
		"negative near":              {func(c *Config) { c.NearLimitMaxSeries = -1 }, "near_limit_max_series:"},
		"negative label cap":         {func(c *Config) { c.MaxLabelPairs = -1 }, "max_label_pairs:"},
		"label drop off":             {func(c *Config) { c.LabelDropEstimates = false }, ""},
		"label drop, no label pairs": {func(c *Config) { c.MaxLabelPairs = 0 }, ""}, // on by default; nothing to estimate
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.field)
		})
	}
}

func TestLimitsYAMLAndResolve(t *testing.T) {
	const doc = `
window: 30m
sub_windows: 3
limits:
  exempt_own_metrics: true
  defaults:
    max_series_per_metric: 1000
    max_values_per_label: 100
    max_values_per_label_mode: shadow
  tenants:
    big:
      max_series_per_metric: 5000
      max_series_per_tenant: 100000
    free:
      max_series_per_metric: 0
  metrics:
    - metric: http_.*
      tenant: big
      max_series_per_metric: 20000
    - metric: http_.*
      max_series_per_metric: 2000
      max_series_per_metric_mode: shadow
  exempt: [debug_.*]
`
	c := DefaultConfig()
	require.NoError(t, yaml.Unmarshal([]byte(doc), &c))
	require.NoError(t, c.Validate())
	require.Equal(t, 30*time.Minute, c.Window)
	require.True(t, c.LabelDropEstimates, "on unless the file turns it off")
	off := DefaultConfig()
	require.NoError(t, yaml.Unmarshal([]byte("label_drop_estimates: false"), &off))
	require.False(t, off.LabelDropEstimates)
	l, err := compileLimits(c.Limits)
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		tenant, metric string
		want           effectiveLimits
	}{
		"defaults":          {"a", "x", effectiveLimits{seriesPerMetric: limit{max: 1000}, valuesPerLabel: limit{max: 100, shadow: true}}},
		"tenant":            {"big", "x", effectiveLimits{seriesPerMetric: limit{max: 5000}, valuesPerLabel: limit{max: 100, shadow: true}, seriesPerTenant: limit{max: 100000}}},
		"unlimited tenant":  {"free", "x", effectiveLimits{valuesPerLabel: limit{max: 100, shadow: true}}},
		"metric for tenant": {"big", "http_requests", effectiveLimits{seriesPerMetric: limit{max: 20000}, valuesPerLabel: limit{max: 100, shadow: true}, seriesPerTenant: limit{max: 100000}}},
		"metric for all":    {"a", "http_requests", effectiveLimits{seriesPerMetric: limit{max: 2000, shadow: true}, valuesPerLabel: limit{max: 100, shadow: true}}},
		"anchored":          {"a", "xhttp_requests", effectiveLimits{seriesPerMetric: limit{max: 1000}, valuesPerLabel: limit{max: 100, shadow: true}}},
		"exempt up":         {"a", "up", effectiveLimits{exempt: true, seriesPerMetric: limit{max: 1000}, valuesPerLabel: limit{max: 100, shadow: true}}},
		"exempt own":        {"a", "promgov_x", effectiveLimits{exempt: true, seriesPerMetric: limit{max: 1000}, valuesPerLabel: limit{max: 100, shadow: true}}},
		"exempt listed":     {"a", "debug_x", effectiveLimits{exempt: true, seriesPerMetric: limit{max: 1000}, valuesPerLabel: limit{max: 100, shadow: true}}},
	} {
		t.Run(name, func(t *testing.T) {
			got := l.resolve(tc.tenant, tc.metric)
			require.Equal(t, tc.want, got)
			require.Equal(t, !tc.want.exempt, got.limited())
		})
	}
	require.Equal(t, limit{max: 100000}, l.tenantLimit("big"))
}

func TestHashSet(t *testing.T) {
	var s hashSet
	exact := map[uint64]uint32{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		h := r.Uint64() % 5000 // repeats
		if i == 7 {
			h = 0 // the empty marker must still be storable
		}
		s.add(h, uint32(i/1000))
		exact[fixKey(h)] = uint32(i / 1000)
	}
	require.Equal(t, len(exact), s.len())
	for h, e := range exact {
		prev, ok := s.touch(h, e)
		require.True(t, ok)
		require.Equal(t, e, prev)
	}
	require.False(t, s.contains(1<<60))
	removed := s.evictBefore(15)
	kept := 0
	for h, e := range exact {
		require.Equal(t, e >= 15, s.contains(h))
		if e >= 15 {
			kept++
		}
	}
	require.Equal(t, len(exact)-kept, removed)
	require.Equal(t, kept, s.len())
	require.Equal(t, kept, s.evictBefore(1000))
	require.Zero(t, s.len())
	require.Zero(t, s.bytes())
}
