package reservoir

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// batchOf encodes series (each with one sample) as pkg/record entries and
// returns the batch and the entries' metric names; the hash of each entry
// is its labels' hash xor seed, so tests can draw independent samples.
func batchOf(seed uint64, series ...labels.Labels) ([]byte, []string) {
	var batch []byte
	names := make([]string, 0, len(series))
	for _, ls := range series {
		body := record.AppendLabels(nil, ls)
		body = protowire.AppendTag(body, record.FieldSamples, protowire.BytesType)
		body = protowire.AppendVarint(body, 11)
		body = append(body, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 1) // value 1.0, timestamp 1
		batch = record.AppendHeader(batch, mix(ls.Hash()^seed), 0, 1, 0, 0, len(body))
		batch = append(batch, body...)
		names = append(names, ls.Get(model.MetricNameLabel))
	}
	return batch, names
}

// mix is a 64-bit finalizer (splitmix64), so seeded hashes stay uniform.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func series(metric string, n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings(model.MetricNameLabel, metric, "instance", "host-"+strconv.Itoa(i%10)+":9100", "job", "node", "request_id", strconv.Itoa(i))
	}
	return out
}

func testConfig(k int) Config {
	c := DefaultConfig()
	c.SeriesPerMetric, c.SampleInterval = k, 0
	return c
}

func TestBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cases := map[string]struct {
		k, maxMetrics, metrics, series int
		wantMetrics, wantPer           int
	}{
		"fewer series than k":  {k: 16, maxMetrics: 10, metrics: 3, series: 5, wantMetrics: 3, wantPer: 5},
		"k series per metric":  {k: 16, maxMetrics: 10, metrics: 3, series: 1000, wantMetrics: 3, wantPer: 16},
		"max_metrics is a cap": {k: 8, maxMetrics: 4, metrics: 20, series: 100, wantMetrics: 4, wantPer: 8},
		"exactly k":            {k: 32, maxMetrics: 1, metrics: 1, series: 32, wantMetrics: 1, wantPer: 32},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(tc.k)
			cfg.MaxMetrics = tc.maxMetrics
			r := New(cfg, prometheus.NewRegistry())
			for m := range tc.metrics {
				b, names := batchOf(0, series(fmt.Sprintf("m%d_total", m), tc.series)...)
				for range 3 { // repeats change nothing
					r.Offer("t1", b, names, now)
				}
			}
			got := r.Samples("", now)
			require.Len(t, got, tc.wantMetrics)
			for _, s := range got {
				require.Len(t, s.Series, tc.wantPer, s.Metric)
				require.Equal(t, tc.series >= tc.k, s.Full)
				for _, ser := range s.Series {
					require.Equal(t, s.Metric, ser.Labels.Get(model.MetricNameLabel))
					require.Equal(t, 4, ser.Labels.Len(), "labels only, decoded whole")
				}
			}
			st := r.Stats()
			require.Equal(t, tc.wantMetrics, st.Metrics)
			require.Equal(t, tc.wantMetrics*tc.wantPer, st.Series)
		})
	}
}

// TestBottomK: the sample is exactly the k smallest hashes, whatever the
// order of arrival.
func TestBottomK(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	all := series("api_requests_total", 500)
	r := New(testConfig(20), nil)
	for i := len(all) - 1; i >= 0; i -= 7 { // a scrambled order, several passes
		for j := i; j >= 0; j -= 50 {
			b, names := batchOf(0, all[j])
			r.Offer("t", b, names, now)
		}
	}
	b, names := batchOf(0, all...)
	r.Offer("t", b, names, now)
	hashes := make([]uint64, len(all))
	for i, ls := range all {
		hashes[i] = mix(ls.Hash())
	}
	want := map[uint64]bool{}
	sorted := append([]uint64(nil), hashes...)
	slicesSort(sorted)
	for _, h := range sorted[:20] {
		want[h] = true
	}
	got := r.Samples("t", now)
	require.Len(t, got, 1)
	for _, s := range got[0].Series {
		require.True(t, want[mix(s.Labels.Hash())], "%s is not among the 20 smallest hashes", s.Labels)
	}
}

func slicesSort(s []uint64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestUniform: over independent hash seeds every series is sampled with
// probability k/N; a chi-square test over N=200 series, k=20 and 2000
// draws stays far below the 0.1 % critical value.
func TestUniform(t *testing.T) {
	const n, k, draws = 200, 20, 2000
	now := time.Unix(1_700_000_000, 0)
	all := series("x_total", n)
	idx := map[string]int{}
	for i, ls := range all {
		idx[ls.String()] = i
	}
	counts := make([]int, n)
	for d := range draws {
		r := New(testConfig(k), nil)
		b, names := batchOf(uint64(d)*0x9e3779b97f4a7c15, all...)
		r.Offer("t", b, names, now)
		for _, s := range r.Samples("t", now)[0].Series {
			counts[idx[s.Labels.String()]]++
		}
	}
	expected := float64(draws) * k / n
	chi2 := 0.0
	for _, c := range counts {
		chi2 += (float64(c) - expected) * (float64(c) - expected) / expected
	}
	// 199 degrees of freedom: the 99.9th percentile is about 267.
	require.Less(t, chi2, 267.0, "inclusion counts are not uniform (expected %.0f each)", expected)
	// The half of the series with the lowest label hashes is not favoured.
	require.InDelta(t, 0.5, float64(sum(counts[:n/2]))/float64(draws*k), 0.02)
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

// TestExpiry: series not seen for max_age leave, live ones take their
// place, and an idle metric is forgotten.
func TestExpiry(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	cfg := testConfig(10)
	cfg.MaxAge = time.Minute
	r := New(cfg, nil)
	old := series("a_total", 100)
	b, names := batchOf(0, old...)
	r.Offer("t", b, names, t0)
	fresh := make([]labels.Labels, 100)
	for i := range fresh {
		fresh[i] = labels.FromStrings(model.MetricNameLabel, "a_total", "pod", "new-"+strconv.Itoa(i))
	}
	b2, names2 := batchOf(0, fresh...)
	t1 := t0.Add(50 * time.Second)
	r.Offer("t", b2, names2, t1)
	t2 := t0.Add(90 * time.Second) // old is stale, fresh is not
	r.Offer("t", b2, names2, t2)
	r.Sweep(t2)
	r.Offer("t", b2, names2, t2.Add(time.Second)) // the next push refills
	got := r.Samples("t", t2)
	require.Len(t, got, 1)
	require.Len(t, got[0].Series, 10)
	for _, s := range got[0].Series {
		require.True(t, s.Labels.Has("pod"), "stale series %s still sampled", s.Labels)
	}
	r.Sweep(t2.Add(2 * time.Minute))
	require.Zero(t, r.Stats().Metrics)
}

func TestGate(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := testConfig(8)
	cfg.SampleInterval = time.Second
	r := New(cfg, nil)
	b1, n1 := batchOf(0, series("a_total", 3)...)
	b2, n2 := batchOf(0, series("b_total", 3)...)
	r.Offer("t", b1, n1, now)
	r.Offer("t", b2, n2, now.Add(500*time.Millisecond)) // gate closed
	require.Equal(t, 1, r.Stats().Metrics)
	r.Offer("t", b2, n2, now.Add(time.Second))
	require.Equal(t, 2, r.Stats().Metrics)
}

func TestOffTakesNothing(t *testing.T) {
	var r *Reservoir = New(Config{}, nil)
	require.Nil(t, r)
	b, n := batchOf(0, series("a_total", 3)...)
	r.Offer("t", b, n, time.Now())
	require.Empty(t, r.Samples("", time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, r.Run(ctx))
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		mut  func(*Config)
		want string
	}{
		"default":           {func(*Config) {}, ""},
		"off":               {func(c *Config) { c.SeriesPerMetric = 0; c.MaxMetrics = 0 }, ""},
		"k too large":       {func(c *Config) { c.SeriesPerMetric = MaxSeriesPerMetric + 1 }, "series_per_metric"},
		"no metrics":        {func(c *Config) { c.MaxMetrics = 0 }, "max_metrics"},
		"no age":            {func(c *Config) { c.MaxAge = 0 }, "max_age"},
		"negative interval": {func(c *Config) { c.SampleInterval = -1 }, "sample_interval"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestMemoryPerMetric measures the heap a full metric sample costs with
// typical series (5 labels, about 110 bytes of labels) and checks Stats'
// accounting against it. The number is in docs/governance.md.
func TestMemoryPerMetric(t *testing.T) {
	const metrics = 500
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultConfig()
	cfg.SampleInterval = 0
	batches := make([][]byte, metrics)
	names := make([][]string, metrics)
	for m := range metrics {
		ss := make([]labels.Labels, 200)
		for i := range ss {
			ss[i] = labels.FromStrings(model.MetricNameLabel, fmt.Sprintf("http_server_requests_%d_total", m), "instance", fmt.Sprintf("10.1.%d.%d:8080", i%7, i), "job", "api-gateway", "method", "GET", "code", strconv.Itoa(200+i%5))
		}
		batches[m], names[m] = batchOf(0, ss...)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New(cfg, nil)
	for m := range metrics {
		r.Offer("tenant-a", batches[m], names[m], now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perMetric := float64(after.HeapAlloc-before.HeapAlloc) / metrics
	st := r.Stats()
	require.Equal(t, metrics*cfg.SeriesPerMetric, st.Series)
	t.Logf("MEASURE reservoir memory: %.0f bytes per metric (k=%d, %.0f bytes per series); Stats accounts %d bytes per metric",
		perMetric, cfg.SeriesPerMetric, perMetric/float64(cfg.SeriesPerMetric), st.Bytes/metrics)
	require.InEpsilon(t, perMetric, float64(st.Bytes)/metrics, 0.35, "Stats.Bytes is far from the measured heap")
	require.Less(t, perMetric, 20_000.0)
	runtime.KeepAlive(r)
	runtime.KeepAlive(batches)
	runtime.KeepAlive(names)
}

// TestConcurrent: pushes, sweeps and previews at once (run with -race);
// the bounds hold.
func TestConcurrent(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cfg := testConfig(16)
	cfg.MaxMetrics = 5
	r := New(cfg, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		b, names := batchOf(0, series(fmt.Sprintf("m%d_total", g), 200)...)
		wg.Go(func() {
			for i := range 50 {
				r.Offer("t", b, names, now.Add(time.Duration(i)*time.Second))
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			r.Sweep(now.Add(time.Duration(i) * time.Second))
			_ = r.Samples("", now)
			_ = r.Stats()
		}
	})
	wg.Wait()
	st := r.Stats()
	require.LessOrEqual(t, st.Metrics, 5)
	require.Equal(t, 4*16, st.Series)
}
