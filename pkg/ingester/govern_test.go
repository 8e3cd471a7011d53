package ingester

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/record"
)

// rwBatch builds a RW 2.0 request with one sample per series; each entry
// is a metric name and an id label value.
func rwBatch(series ...[2]string) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for _, s := range series {
		ls := labels.FromStrings(model.MetricNameLabel, s[0], "id", s[1])
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		})
	}
	req.Symbols = st.Symbols()
	return req
}

func names(t *testing.T, req *writev2.Request) []string {
	t.Helper()
	var out []string
	b := labels.NewScratchBuilder(2)
	for _, ts := range req.Timeseries {
		ls, err := ts.ToLabels(&b, req.Symbols)
		require.NoError(t, err)
		out = append(out, ls.Get(model.MetricNameLabel)+"/"+ls.Get("id"))
	}
	return out
}

func TestGovernBatch(t *testing.T) {
	batch := [][2]string{{"m", "1"}, {"m", "2"}, {"n", "1"}, {"m", "3"}, {"m", "4"}, {"m", "1"}}
	tests := map[string]struct {
		mode    cardinality.Mode
		refused int
		kept    []string
	}{
		"enforce": {cardinality.ModeEnforce, 2, []string{"m/1", "m/2", "n/1", "m/1"}},
		"shadow":  {cardinality.ModeShadow, 0, []string{"m/1", "m/2", "n/1", "m/3", "m/4", "m/1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := cardinality.DefaultConfig()
			cfg.Limits.Defaults = cardinality.Limits{MaxSeriesPerMetric: 2, MaxSeriesPerMetricMode: tc.mode}
			tr, err := cardinality.New(cfg, cardinality.Options{})
			require.NoError(t, err)
			batch := record.FromV2(nil, rwBatch(batch...))
			var sc pushScratch
			_, err = countBatch(batch, &sc)
			require.NoError(t, err)
			kept, g := governBatch(tr, "team-a", batch, &sc, time.Now(), false)
			req, _, err := record.ToV2Request(kept, nil)
			require.NoError(t, err)
			require.Equal(t, tc.refused, g.refused)
			require.Equal(t, tc.kept, names(t, req))
			if tc.refused > 0 {
				require.Contains(t, g.message, "max_series_per_metric=2")
				require.Contains(t, g.message, `"m"`)
				require.Contains(t, g.message, `"team-a"`)
			} else {
				require.Empty(t, g.message)
			}
			// The kept batch still encodes and decodes.
			b, err := req.Marshal()
			require.NoError(t, err)
			var back writev2.Request
			require.NoError(t, back.Unmarshal(b))
			require.Equal(t, tc.kept, names(t, &back))
		})
	}
}

// BenchmarkGovernBatch is the ingester hot path per series: Observe with
// the hash the distributor sent (labels are built only for a series not
// yet counted in the current sub-window), for a batch of 500 series of 4 labels that
// were all seen before (the steady state).
func BenchmarkGovernBatch(b *testing.B) {
	for _, limited := range []bool{false, true} {
		b.Run("limited="+strconv.FormatBool(limited), func(b *testing.B) {
			cfg := cardinality.DefaultConfig()
			if limited {
				cfg.Limits.Defaults = cardinality.Limits{MaxSeriesPerMetric: 1_000_000, MaxSeriesPerMetricMode: cardinality.ModeEnforce}
			}
			tr, err := cardinality.New(cfg, cardinality.Options{})
			require.NoError(b, err)
			st := writev2.NewSymbolTable()
			req := &writev2.Request{}
			for i := range 500 {
				ls := labels.FromStrings(model.MetricNameLabel, "http_requests_total", "code", strconv.Itoa(200+i%5), "job", "api", "pod", "pod-"+strconv.Itoa(i))
				req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
					LabelsRefs: st.SymbolizeLabels(ls, nil),
					Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
				})
			}
			req.Symbols = st.Symbols()
			batch := record.FromV2(nil, req)
			var sc pushScratch
			_, err = countBatch(batch, &sc)
			require.NoError(b, err)
			now := time.Now()
			governBatch(tr, "t", batch, &sc, now, false)
			b.ReportAllocs()
			cpu := startCPU()
			b.ResetTimer()
			for range b.N {
				governBatch(tr, "t", batch, &sc, now, false)
			}
			cpu.report(b, len(req.Timeseries))
		})
	}
}

// BenchmarkGovernBatchWide is the steady state of the end-to-end
// measurement (proxy-efficiency.sh): 100k series spread round-robin over
// 1,000 metrics, pushed 500 at a time, so consecutive series of a push
// belong to different metrics and each probe of a series' admitted set
// is a cache miss. It reports ns and allocations per series.
func BenchmarkGovernBatchWide(b *testing.B) {
	const metrics, total, perPush = 1000, 100_000, 500
	cfg := cardinality.DefaultConfig()
	cfg.Limits.Defaults = cardinality.Limits{MaxSeriesPerMetric: 1_000_000, MaxSeriesPerMetricMode: cardinality.ModeEnforce}
	tr, err := cardinality.New(cfg, cardinality.Options{})
	require.NoError(b, err)
	type push struct {
		batch []byte
		sc    *pushScratch
	}
	var pushes []push
	for lo := 0; lo < total; lo += perPush {
		st := writev2.NewSymbolTable()
		req := &writev2.Request{}
		for i := lo; i < lo+perPush; i++ {
			ls := labels.FromStrings(model.MetricNameLabel, "rwload_metric_"+strconv.Itoa(i%metrics),
				"env", "perf", "instance", "host-N:9100", "job", "node", "series", strconv.Itoa(i))
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(ls, nil),
				Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
			})
		}
		req.Symbols = st.Symbols()
		batch := record.FromV2(nil, req)
		sc := new(pushScratch)
		_, err = countBatch(batch, sc)
		require.NoError(b, err)
		pushes = append(pushes, push{batch: batch, sc: sc})
	}
	now := time.Now()
	for _, p := range pushes {
		governBatch(tr, "t", p.batch, p.sc, now, false)
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	for i := range b.N {
		p := pushes[i%len(pushes)]
		governBatch(tr, "t", p.batch, p.sc, now, false)
	}
	cpu.report(b, perPush)
}

// cpuClock measures the process's CPU time (user + system) over a
// benchmark: on a shared, loaded machine wall time per operation mostly
// measures the neighbours, CPU time much less.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

// report adds ns/series (wall) and cpu-ns/series (process CPU time) for
// b.N operations of perOp series each.
func (c cpuClock) report(b *testing.B, perOp int) {
	n := float64(b.N * perOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/series")
	b.ReportMetric(float64(processCPU()-c.start)/n, "cpu-ns/series")
}
