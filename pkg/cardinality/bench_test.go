package cardinality

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// benchSeries builds n series of metric with labels id, pod (100 values),
// code (5 values) and a constant job.
func benchSeries(tenant, metric string, n int) []*Series {
	out := make([]*Series, n)
	for i := range out {
		out[i] = mkSeries(tenant, metric, i, "code", fmt.Sprint(200+i%5), "job", "api", "pod", fmt.Sprint("pod-", i%100))
		out[i].Samples, out[i].Bytes = 1, 60
	}
	return out
}

// BenchmarkObserve measures the ingester hot path, per tracked series
// observation (one series of a batch, with its samples).
func BenchmarkObserve(b *testing.B) {
	for _, bc := range []struct {
		name  string
		limit int64
		n     int // distinct series cycled through
		fresh bool
		mode  Mode
		off   bool // label_drop_estimates: false
	}{
		{name: "unlimited/existing", n: 10_000},
		{name: "unlimited/existing/no-label-drop", n: 10_000, off: true},
		{name: "limited/existing", limit: 1_000_000, n: 10_000},
		{name: "limited/new", limit: 1 << 40, fresh: true},
		{name: "limited/refused", limit: 1, n: 10_000},
		{name: "limited/shadow-refused", limit: 1, n: 10_000, mode: ModeShadow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newClock()
			cfg := testConfig()
			cfg.Limits.Defaults.MaxSeriesPerMetric = bc.limit
			cfg.Limits.Defaults.MaxValuesPerLabel = bc.limit
			cfg.Limits.Defaults.MaxSeriesPerMetricMode = bc.mode
			cfg.Limits.Defaults.MaxValuesPerLabelMode = bc.mode
			cfg.LabelDropEstimates = !bc.off
			tr := newTracker(b, cfg, c)
			now := c.now()
			var ss []*Series
			if !bc.fresh {
				ss = benchSeries("t", "m", bc.n)
				for _, s := range ss {
					tr.Observe(s, now)
				}
			} else {
				ss = benchSeries("t", "m", 1000)
			}
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s := ss[i%len(ss)]
				if bc.fresh {
					s.Hash = r.Uint64() // a new series every time
				}
				tr.Observe(s, now)
			}
		})
	}
	b.Run("unlimited/parallel", func(b *testing.B) {
		c := newClock()
		tr := newTracker(b, testConfig(), c)
		now := c.now()
		ss := make([][]*Series, 8)
		for i := range ss {
			ss[i] = benchSeries("t", fmt.Sprint("m", i), 1000)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var w atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			mine := ss[int(w.Add(1))%len(ss)]
			i := 0
			for pb.Next() {
				tr.Observe(mine[i%len(mine)], now)
				i++
			}
		})
	})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory measures heap per tracked series and per tracked metric
// with runtime.MemStats; run with -benchtime=1x. Big metrics: one metric of
// many series in one sub-window (dense sketches, the admitted set grows per
// series). Small metrics: many metrics of 10 series and 3 labels each
// (sparse sketches).
func BenchmarkMemory(b *testing.B) {
	for _, bc := range []struct {
		name            string
		metrics, series int
		limited         bool
		subWindows      int // sub-windows the series are spread over
	}{
		{name: "big-metric/unlimited", metrics: 1, series: 1_000_000, subWindows: 1},
		{name: "big-metric/limited", metrics: 1, series: 1_000_000, limited: true, subWindows: 1},
		{name: "big-metric/limited/6-subwindows", metrics: 1, series: 1_000_000, limited: true, subWindows: 6},
		{name: "1M-series-1000-metrics/unlimited", metrics: 1000, series: 1000, subWindows: 1},
		{name: "1M-series-1000-metrics/limited", metrics: 1000, series: 1000, limited: true, subWindows: 1},
		{name: "small-metrics/unlimited", metrics: 20_000, series: 10, subWindows: 1},
		{name: "small-metrics/limited", metrics: 20_000, series: 10, limited: true, subWindows: 1},
		{name: "small-metrics/limited/6-subwindows", metrics: 20_000, series: 10, limited: true, subWindows: 6},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var perSeries, perMetric float64
			for range b.N {
				c := newClock()
				cfg := testConfig()
				if bc.limited {
					cfg.Limits.Defaults.MaxSeriesPerMetric = 1 << 40
				}
				proto := benchSeries("t", "m", bc.series)
				before := heapInUse()
				tr := newTracker(b, cfg, c)
				for w := range bc.subWindows {
					now := c.advance(cfg.subWindow())
					for m := range bc.metrics {
						name := fmt.Sprint("metric_", m)
						for _, s := range proto {
							s.Metric = name
							s.Hash = s.Labels.Hash() ^ uint64(m)*0x9E3779B97F4A7C15
							tr.Observe(s, now)
						}
					}
					_ = w
				}
				after := heapInUse()
				runtime.KeepAlive(tr)
				runtime.KeepAlive(proto)
				total := float64(after - before)
				perSeries = total / float64(bc.metrics*bc.series)
				perMetric = total / float64(bc.metrics)
			}
			b.ReportMetric(perSeries, "bytes/series")
			b.ReportMetric(perMetric, "bytes/metric")
		})
	}
}

// BenchmarkMetricsAPI answers the metrics listing (top 100 by series) over
// 100k tracked metrics of 5 series each.
func BenchmarkMetricsAPI(b *testing.B) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 1000
	tr := newTracker(b, cfg, c)
	now := c.now()
	s := Series{Tenant: "t", Samples: 1}
	r := rand.New(rand.NewPCG(3, 4))
	for m := range 100_000 {
		s.Metric = fmt.Sprint("metric_", m)
		for range 1 + m%10 {
			s.Hash = r.Uint64()
			tr.Observe(&s, now)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rows, err := tr.Metrics(context.Background(), Query{Limit: 100})
		if err != nil || len(rows) != 100 {
			b.Fatal(err, len(rows))
		}
	}
}
