package cardinality

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func metricRow(t *testing.T, tr *Tracker, tenant, name string) MetricCardinality {
	t.Helper()
	rows, err := tr.Metric(context.Background(), name, Query{Tenant: tenant})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	return rows[0]
}

func TestSeriesPerMetricLimit(t *testing.T) {
	for name, mode := range map[string]Mode{"enforce": ModeEnforce, "shadow": ModeShadow} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			cfg := testConfig()
			cfg.Limits.Defaults.MaxSeriesPerMetric = 10
			cfg.Limits.Defaults.MaxSeriesPerMetricMode = mode
			tr := newTracker(t, cfg, c)
			now := c.now()
			for i := range 10 {
				d := tr.Observe(mkSeries("t1", "m", i), now)
				require.Equal(t, Decision{Admit: true}, d, "series %d", i)
			}
			for i := 10; i < 15; i++ {
				d := tr.Observe(mkSeries("t1", "m", i), now)
				require.Equal(t, LimitSeriesPerMetric, d.Limit)
				require.Contains(t, d.Message, `metric "m"`)
				require.Contains(t, d.Message, `tenant "t1"`)
				require.Contains(t, d.Message, "max_series_per_metric=10")
				if mode == ModeShadow {
					require.True(t, d.Admit, "shadow changes nothing")
					require.True(t, d.Shadow)
				} else {
					require.False(t, d.Admit)
					require.False(t, d.Shadow)
				}
			}
			// Existing series keep flowing, later sub-windows too.
			now = c.advance(15 * time.Minute)
			tr.Rotate(now)
			for i := range 10 {
				require.True(t, tr.Observe(mkSeries("t1", "m", i), now).Admit, "series %d", i)
			}
			// Other metrics and tenants are not affected.
			require.Equal(t, Decision{Admit: true}, tr.Observe(mkSeries("t1", "other", 0), now))
			require.Equal(t, Decision{Admit: true}, tr.Observe(mkSeries("t2", "m", 99), now))

			row := metricRow(t, tr, "t1", "m")
			require.Equal(t, uint64(15), row.Series, "sketches count every attempt")
			require.Equal(t, uint64(5), row.RefusedSeries)
			require.Equal(t, int64(10), row.Limit)
		})
	}
}

func TestShadowChangesNothing(t *testing.T) {
	c := newClock()
	unlimited := newTracker(t, testConfig(), c)
	cfg := testConfig()
	cfg.Limits.Defaults = Limits{
		MaxSeriesPerMetric: 3, MaxSeriesPerMetricMode: ModeShadow,
		MaxValuesPerLabel: 2, MaxValuesPerLabelMode: ModeShadow,
		MaxSeriesPerTenant: 4, MaxSeriesPerTenantMode: ModeShadow,
	}
	reg := prometheus.NewRegistry()
	shadow, err := New(cfg, Options{Now: c.now, Registerer: reg})
	require.NoError(t, err)
	for i := range 50 {
		s := mkSeries("t", fmt.Sprintf("m%d", i%3), i, "pod", fmt.Sprint(i%7))
		require.Equal(t, unlimited.Observe(s, c.now()).Admit, shadow.Observe(s, c.now()).Admit)
	}
	a, err := unlimited.Metrics(context.Background(), Query{})
	require.NoError(t, err)
	b, err := shadow.Metrics(context.Background(), Query{})
	require.NoError(t, err)
	require.Len(t, b, len(a))
	for i := range a {
		require.Equal(t, a[i].Series, b[i].Series)
		require.Positive(t, b[i].RefusedSeries, "shadow counts what it would have refused")
	}
	require.Positive(t, testutil.ToFloat64(shadow.m.refusals.WithLabelValues(LimitSeriesPerMetric, "t", "shadow")))
	require.Zero(t, testutil.ToFloat64(shadow.m.refusals.WithLabelValues(LimitSeriesPerMetric, "t", "enforce")))
}

func TestIdleEvictionFreesRoom(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 10
	tr := newTracker(t, cfg, c)
	now := c.now()
	for i := range 10 {
		require.True(t, tr.Observe(mkSeries("t", "m", i), now).Admit)
	}
	require.False(t, tr.Observe(mkSeries("t", "m", 10), now).Admit)
	// Series 0-4 keep being sent, 5-9 go idle for a whole window.
	for range cfg.SubWindows + 1 {
		now = c.advance(cfg.subWindow())
		tr.Rotate(now)
		for i := range 5 {
			require.True(t, tr.Observe(mkSeries("t", "m", i), now).Admit)
		}
	}
	for i := 10; i < 15; i++ {
		require.True(t, tr.Observe(mkSeries("t", "m", i), now).Admit, "room freed by eviction, series %d", i)
	}
	require.False(t, tr.Observe(mkSeries("t", "m", 15), now).Admit)
	// An evicted series is new again and has to wait for room.
	require.False(t, tr.Observe(mkSeries("t", "m", 5), now).Admit)
}

func TestValuesPerLabelLimit(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxValuesPerLabel = 3
	tr := newTracker(t, cfg, c)
	now := c.now()
	ser := func(pod, code string) *Series {
		ls := labels.FromStrings("__name__", "req", "code", code, "pod", pod)
		return &Series{Tenant: "t", Metric: "req", Hash: ls.Hash(), Labels: ls, Samples: 1}
	}
	for _, pod := range []string{"a", "b", "c"} {
		require.True(t, tr.Observe(ser(pod, "200"), now).Admit)
	}
	d := tr.Observe(ser("d", "200"), now)
	require.False(t, d.Admit)
	require.Equal(t, LimitValuesPerLabel, d.Limit)
	require.Contains(t, d.Message, `label "pod"`)
	// A refused series stays refused on its next samples, in the same
	// sub-window and later (it once was admitted from its second sample on).
	for _, at := range []time.Time{now, now.Add(time.Second), c.advance(cfg.Window / time.Duration(cfg.SubWindows))} {
		d := tr.Observe(ser("d", "200"), at)
		require.False(t, d.Admit, "sample at %s", at)
		require.Equal(t, LimitValuesPerLabel, d.Limit)
	}
	now = c.now()
	// Known values combine freely; existing series flow.
	require.True(t, tr.Observe(ser("a", "500"), now).Admit)
	require.True(t, tr.Observe(ser("c", "500"), now).Admit)
	require.True(t, tr.Observe(ser("b", "200"), now).Admit)

	row := metricRow(t, tr, "t", "req")
	// Six series: dropping pod leaves code (2), dropping code leaves pod (4).
	require.Equal(t, []LabelCardinality{{Name: "pod", Values: 4, SeriesWithout: 2}, {Name: "code", Values: 2, SeriesWithout: 4}}, row.Labels)
}

func TestTenantLimitAcrossPeers(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Tenants = map[string]LimitOverrides{"t": {MaxSeriesPerTenant: ptr(6)}}
	a, b := newTracker(t, cfg, c), newTracker(t, cfg, c)
	now := c.now()
	for i := range 4 {
		require.True(t, b.Observe(mkSeries("t", "on-b", i), now).Admit)
	}
	b.Rotate(now)
	sk, err := b.TenantSketch("t", now)
	require.NoError(t, err)
	require.NoError(t, a.MergePeerSketch("b", "t", sk, now))
	require.True(t, a.Observe(mkSeries("t", "on-a", 0), now).Admit)
	require.True(t, a.Observe(mkSeries("t", "on-a", 1), now).Admit)
	d := a.Observe(mkSeries("t", "on-a", 2), now)
	require.False(t, d.Admit)
	require.Equal(t, LimitSeriesPerTenant, d.Limit)
	require.Contains(t, d.Message, `tenant "t"`)
	require.True(t, a.Observe(mkSeries("t", "on-a", 1), now).Admit, "existing series flow")
	require.True(t, a.Observe(mkSeries("other", "on-a", 2), now).Admit, "other tenants unaffected")

	// Resending the same peer sketch replaces it: still refused, not doubled.
	require.NoError(t, a.MergePeerSketch("b", "t", sk, now))
	a.Rotate(now)
	require.False(t, a.Observe(mkSeries("t", "on-a", 3), now).Admit)
	// When the peer leaves, its series no longer count.
	a.ForgetPeer("b")
	a.Rotate(now)
	require.True(t, a.Observe(mkSeries("t", "on-a", 3), now).Admit)

	// Peer sketches expire after PeerSketchTTL.
	require.NoError(t, a.MergePeerSketch("b", "t", sk, now))
	require.False(t, a.Observe(mkSeries("t", "on-a", 4), now).Admit)
	now = c.advance(cfg.PeerSketchTTL + time.Second)
	a.Rotate(now)
	require.True(t, a.Observe(mkSeries("t", "on-a", 4), now).Admit)

	require.Error(t, a.MergePeerSketch("b", "t", []byte("junk"), now))
}

func TestExemptMetrics(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults = Limits{MaxSeriesPerMetric: 1, MaxValuesPerLabel: 1, MaxSeriesPerTenant: 1}
	cfg.Limits.Exempt = []string{"keep_.*"}
	tr := newTracker(t, cfg, c)
	for _, m := range []string{"up", "promgov_ingester_samples_total", "keep_me"} {
		for i := range 5 {
			require.True(t, tr.Observe(mkSeries("t", m, i), c.now()).Admit, "%s %d", m, i)
		}
		require.Zero(t, metricRow(t, tr, "t", m).Limit)
	}
	require.True(t, tr.Observe(mkSeries("t", "limited", 0), c.now()).Admit)
	require.False(t, tr.Observe(mkSeries("t", "limited", 1), c.now()).Admit)
}

func TestFailOpenDuringTransfer(t *testing.T) {
	for name, failOpen := range map[string]bool{"fail open": true, "fail closed": false} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			cfg := testConfig()
			cfg.FailOpenDuringTransfer = failOpen
			cfg.Limits.Defaults.MaxSeriesPerMetric = 1
			tr := newTracker(t, cfg, c)
			require.True(t, tr.Observe(mkSeries("t", "m", 0), c.now()).Admit)
			done := tr.BeginTransfer()
			d := tr.Observe(mkSeries("t", "m", 1), c.now())
			require.Equal(t, failOpen, d.Admit)
			require.Equal(t, failOpen, d.Shadow)
			require.Equal(t, LimitSeriesPerMetric, d.Limit)
			done()
			done()
			require.Zero(t, testutil.ToFloat64(tr.m.transfers))
			require.False(t, tr.Observe(mkSeries("t", "m", 2), c.now()).Admit)
			if failOpen {
				require.Equal(t, 1.0, testutil.ToFloat64(tr.m.failOpen))
				require.True(t, tr.Observe(mkSeries("t", "m", 1), c.now()).Admit, "admitted while open, so existing")
			}
		})
	}
}

func TestMemoryCaps(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.MaxTrackedMetrics = 2
	cfg.MaxLabelPairs = 3
	cfg.Limits.Defaults.MaxSeriesPerMetric = 1
	tr := newTracker(t, cfg, c)
	for _, m := range []string{"a", "b", "c", "d"} {
		tr.Observe(mkSeries("t", m, 0, "x", "1"), c.now())
	}
	rows, err := tr.Metrics(context.Background(), Query{})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, 2.0, testutil.ToFloat64(tr.m.untracked.WithLabelValues("metric")))
	require.Equal(t, 1.0, testutil.ToFloat64(tr.m.untracked.WithLabelValues("label")))
	require.Equal(t, 3.0, testutil.ToFloat64(tr.m.labelPairs))
	require.True(t, tr.Observe(mkSeries("t", "c", 1), c.now()).Admit, "untracked metrics fail open")
}

func TestRatesAndWindow(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	tr := newTracker(t, cfg, c)
	start := c.now().Truncate(cfg.subWindow())
	c.mu.Lock()
	c.t = start
	c.mu.Unlock()
	for i := range 100 {
		s := mkSeries("t", "m", i)
		s.Samples, s.Bytes = 10, 1000
		tr.Observe(s, start)
	}
	c.advance(100 * time.Second)
	row := metricRow(t, tr, "t", "m")
	require.InDelta(t, 10.0, row.SamplesRate, 1e-9)
	require.InDelta(t, 1000.0, row.BytesRate, 1e-9)
	ten, err := tr.Tenants(context.Background(), Query{})
	require.NoError(t, err)
	require.Equal(t, []TenantCardinality{{Tenant: "t", Series: 100, SamplesRate: 10, BytesRate: 1000}}, ten)

	// Sub-windows age out one by one: no reset cliff, then gone.
	for range cfg.SubWindows - 1 {
		now := c.advance(cfg.subWindow())
		tr.Rotate(now)
		require.Equal(t, uint64(100), metricRow(t, tr, "t", "m").Series)
	}
	now := c.advance(cfg.subWindow())
	tr.Rotate(now)
	rows, err := tr.Metrics(context.Background(), Query{})
	require.NoError(t, err)
	require.Empty(t, rows, "state of a metric idle for a whole window is freed")
	require.Zero(t, tr.nMetrics.Load())
	tens, err := tr.Tenants(context.Background(), Query{})
	require.NoError(t, err)
	require.Empty(t, tens)
}

func TestSetLimits(t *testing.T) {
	c := newClock()
	tr := newTracker(t, testConfig(), c)
	for i := range 5 {
		require.True(t, tr.Observe(mkSeries("t", "m", i), c.now()).Admit)
	}
	l := DefaultConfig().Limits
	l.Metrics = []MetricOverride{{Metric: "m", LimitOverrides: LimitOverrides{MaxSeriesPerMetric: ptr(2)}}}
	require.NoError(t, tr.SetLimits(l))
	require.True(t, tr.Observe(mkSeries("t", "m", 0), c.now()).Admit)
	require.True(t, tr.Observe(mkSeries("t", "m", 1), c.now()).Admit)
	require.False(t, tr.Observe(mkSeries("t", "m", 2), c.now()).Admit)
	require.Equal(t, int64(2), metricRow(t, tr, "t", "m").Limit)
	l.Metrics[0].Metric = "("
	require.Error(t, tr.SetLimits(l))
}

func TestNearLimitGauges(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.NearLimitMaxSeries = 2
	cfg.Limits.Defaults.MaxSeriesPerMetric = 10
	reg := prometheus.NewRegistry()
	tr, err := New(cfg, Options{Now: c.now, Registerer: reg})
	require.NoError(t, err)
	fill := map[string]int{"low": 5, "eighty": 8, "nine": 9, "full": 12}
	for m, n := range fill {
		for i := range n {
			tr.Observe(mkSeries("t", m, i), c.now())
		}
	}
	tr.Rotate(c.now())
	require.Equal(t, 2, testutil.CollectAndCount(tr.m.nearLimit), "only above 80%%, at most near_limit_max_series")
	require.Equal(t, 1.0, testutil.ToFloat64(tr.m.nearLimit.WithLabelValues("t", "full", LimitSeriesPerMetric)))
	require.Equal(t, 0.9, testutil.ToFloat64(tr.m.nearLimit.WithLabelValues("t", "nine", LimitSeriesPerMetric)))
}

func TestConcurrentUse(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 50
	cfg.Limits.Defaults.MaxValuesPerLabel = 40
	cfg.Limits.Defaults.MaxSeriesPerTenant = 500
	cfg.SnapshotPath = t.TempDir() + "/snap"
	tr := newTracker(t, cfg, c)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				s := mkSeries(fmt.Sprint("t", w%2), fmt.Sprint("m", i%7), i%97, "pod", fmt.Sprint(i%45))
				tr.Observe(s, c.now())
			}
		}()
	}
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		for ctx.Err() == nil {
			tr.Rotate(c.advance(time.Minute))
			_, _ = tr.Metrics(ctx, Query{Sketches: true})
			_, _ = tr.Tenants(ctx, Query{})
			_, _ = tr.Metric(ctx, "m1", Query{})
			_ = tr.WriteSnapshot(cfg.SnapshotPath)
			if b, err := tr.ExportMetric("t0", "m2", c.now()); err == nil {
				_, _, _ = tr.ImportMetric(b, c.now())
			}
		}
	}()
	wg.Wait()
	cancel()
	bg.Wait()
	rows, err := tr.Metrics(context.Background(), Query{Limit: -1})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
}
