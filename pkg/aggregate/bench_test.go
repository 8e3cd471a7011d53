package aggregate

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// benchBatches builds steps batches of series counters (or native
// histograms) spread over 10 groups.
func benchBatches(b *testing.B, series, steps int, hist bool) ([][]byte, []string) {
	var batches [][]byte
	var names []string
	for s := range steps {
		var ins []in
		for i := range series {
			ls := labels.FromStrings("__name__", "bench_total", "pod", "pod-"+strconv.Itoa(i), "svc", "svc-"+strconv.Itoa(i%10), "job", "api")
			if hist {
				n := uint64(s*i + 1)
				h := &histogram.Histogram{Schema: 3, Count: 4 * n, Sum: float64(n),
					PositiveSpans: []histogram.Span{{Offset: 0, Length: 4}}, PositiveBuckets: []int64{int64(n), 0, 0, 0}}
				ins = append(ins, nativeHist(ls, int64(s)*1000+1, h, nil))
			} else {
				ins = append(ins, counter(ls, int64(s)*1000+1, float64(s*i)))
			}
		}
		batch, ns := batchOf(b, ins...)
		batches = append(batches, batch)
		names = ns
	}
	return batches, names
}

func benchProcess(b *testing.B, hist bool) {
	const series, steps = 1000, 64
	batches, names := benchBatches(b, series, steps, hist)
	var e *Engine
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(steps-1) == 0 { // timestamps must advance: start over
			b.StopTimer()
			e = mustEngine(b, RuleConfig{Name: "r", Match: "bench_total", Without: []string{"pod"}, Interval: 3600_000_000_000})
			e.Process("t", batches[0], names) // bases and groups
			b.StartTimer()
		}
		e.Process("t", batches[1+i%(steps-1)], names)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series), "ns/sample")
}

// BenchmarkCounterSum: ns and allocations per batch of 1000 counter
// samples (ns/sample reported).
func BenchmarkCounterSum(b *testing.B) { benchProcess(b, false) }

// BenchmarkHistogramMerge: the same with native histograms.
func BenchmarkHistogramMerge(b *testing.B) { benchProcess(b, true) }

// BenchmarkMemoryPerGroup reports the heap a group costs with its inputs:
// groups of 10 inputs each, and groups of one input.
func BenchmarkMemoryPerGroup(b *testing.B) {
	for _, perGroup := range []int{1, 10} {
		b.Run("inputs="+strconv.Itoa(perGroup), func(b *testing.B) {
			const groups = 2000
			var ins []in
			for i := range groups * perGroup {
				ls := labels.FromStrings("__name__", "mem_total", "pod", "pod-"+strconv.Itoa(i), "svc", "svc-"+strconv.Itoa(i/perGroup), "job", "api")
				ins = append(ins, in{typ: writev2.Metadata_METRIC_TYPE_COUNTER, ls: ls, samples: []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}})
			}
			batch, names := batchOf(b, ins...)
			b.ReportAllocs()
			var per float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				e := mustEngine(b, RuleConfig{Name: "r", Match: "mem_total", Without: []string{"pod"}, Interval: 3600_000_000_000})
				e.Process("t", batch, names)
				runtime.GC()
				runtime.ReadMemStats(&after)
				per = float64(after.HeapAlloc-before.HeapAlloc) / groups
				runtime.KeepAlive(e)
			}
			b.ReportMetric(per, "bytes/group")
			b.ReportMetric(per/float64(perGroup), "bytes/input")
		})
	}
}
