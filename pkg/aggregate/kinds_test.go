package aggregate

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func rule10s(name, match string, mod func(*RuleConfig)) RuleConfig {
	r := RuleConfig{Name: name, Match: match, Without: []string{"pod"}, Interval: model.Duration(10 * time.Second), MaxDelay: model.Duration(time.Second)}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestGaugeOutputs(t *testing.T) {
	e := mustEngine(t, rule10s("g", "temp", func(r *RuleConfig) { r.Outputs = gaugeOutputs }))
	b, names := batchOf(t,
		gauge(pod("temp", "pod", "a"), 1000, 5), gauge(pod("temp", "pod", "a"), 6000, 7), // last of a: 7
		gauge(pod("temp", "pod", "b"), 2000, 1), gauge(pod("temp", "pod", "c"), 3000, 9))
	kept, taken := e.Process("t", b, names)
	require.Empty(t, kept)
	require.Equal(t, 4, taken.Samples)
	var c clock
	got := outputs(t, e.Close(c.at(12000), nil))
	want := map[string]float64{"sum": 17, "min": 1, "max": 9, "avg": 17.0 / 3, "count": 3, "last": 7}
	require.Len(t, got, len(want))
	for op, v := range want {
		key := `t/{__name__="temp:` + op + `_without_pod"}`
		require.Equal(t, []point{{T: 9999, V: v}}, got[key], key)
	}
}

// TestClassicHistogram: buckets keep le whatever by says; _sum and _count
// are summed counters.
func TestClassicHistogram(t *testing.T) {
	e := mustEngine(t, rule10s("h", "lat", func(r *RuleConfig) { r.Without = nil; r.By = []string{"svc"} }))
	h := writev2.Metadata_METRIC_TYPE_HISTOGRAM
	mk := func(name string, p string, le string, ts int64, v float64) in {
		kv := []string{"pod", p, "svc", "x"}
		if le != "" {
			kv = append(kv, "le", le)
		}
		return in{typ: h, ls: pod(name, kv...), samples: []writev2.Sample{{Value: v, Timestamp: ts}}}
	}
	for _, ts := range []int64{1000, 5000} {
		k := float64(ts / 1000)
		b, names := batchOf(t,
			mk("lat_bucket", "a", "0.1", ts, k), mk("lat_bucket", "a", "+Inf", ts, 2*k),
			mk("lat_bucket", "b", "0.1", ts, 10*k), mk("lat_bucket", "b", "+Inf", ts, 20*k),
			mk("lat_sum", "a", "", ts, k), mk("lat_count", "a", "", ts, 2*k),
			mk("lat_sum", "b", "", ts, k), mk("lat_count", "b", "", ts, 20*k))
		kept, _ := e.Process("t", b, names)
		require.Empty(t, kept)
	}
	var c clock
	got := outputs(t, e.Close(c.at(12000), nil))
	want := map[string]float64{ // increases from ts 1 to 5 (k: 1 → 5)
		`t/{__name__="svc:lat:sum_bucket", le="0.1", svc="x"}`:  4 + 40,
		`t/{__name__="svc:lat:sum_bucket", le="+Inf", svc="x"}`: 8 + 80,
		`t/{__name__="svc:lat:sum_sum", svc="x"}`:               4 + 4,
		`t/{__name__="svc:lat:sum_count", svc="x"}`:             8 + 80,
	}
	require.Len(t, got, len(want), "%v", keys(got))
	for k, v := range want {
		require.Equal(t, []point{{T: 9999, V: v}}, got[k], k)
	}
}

// TestNativeHistograms: integer and float inputs of different schemas are
// merged at the lowest schema; resets count the new value.
func TestNativeHistograms(t *testing.T) {
	e := mustEngine(t, rule10s("n", "rpc", nil))
	ih := func(schema int32, n uint64) *histogram.Histogram {
		return &histogram.Histogram{Schema: schema, Count: n * 2, Sum: float64(n), ZeroThreshold: 0.001,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{int64(n), 0}}
	}
	fh := func(schema int32, n float64) *histogram.FloatHistogram {
		return &histogram.FloatHistogram{Schema: schema, Count: n, Sum: n, ZeroThreshold: 0.001,
			PositiveSpans: []histogram.Span{{Offset: 1, Length: 1}}, PositiveBuckets: []float64{n}}
	}
	push := func(ins ...in) {
		b, names := batchOf(t, ins...)
		kept, taken := e.Process("t", b, names)
		require.Empty(t, kept)
		require.Equal(t, len(ins), taken.Histograms)
	}
	push(nativeHist(pod("rpc", "pod", "a"), 1000, ih(1, 1), nil), nativeHist(pod("rpc", "pod", "b"), 1000, nil, fh(0, 2)))
	push(nativeHist(pod("rpc", "pod", "a"), 4000, ih(1, 3), nil), nativeHist(pod("rpc", "pod", "b"), 4000, nil, fh(0, 5)))
	push(nativeHist(pod("rpc", "pod", "a"), 7000, ih(1, 1), nil)) // reset: +all of it
	var c clock
	got := outputs(t, e.Close(c.at(12000), nil))
	ps := got[`t/{__name__="rpc:sum_without_pod"}`]
	require.Len(t, ps, 1)
	h := ps[0].H
	require.NotNil(t, h)
	require.False(t, ps[0].Int, "a float input makes the sum a float histogram")
	// a: +2 then reset +1 → count 4+2=6, sum 2+1=3; b: +3 → count 3, sum 3.
	require.Equal(t, int32(0), h.Schema, "merged at the lower schema")
	require.InDelta(t, 9, h.Count, 1e-9)
	require.InDelta(t, 6, h.Sum, 1e-9)
	var bucketTotal float64
	it := h.AllBucketIterator()
	for it.Next() {
		bucketTotal += it.At().Count
	}
	require.InDelta(t, 9, bucketTotal+h.ZeroCount, 1e-9, "every observation in a bucket")
}

// TestNativeIntegerHistograms: when every input is an integer histogram,
// the sum is written as an integer histogram (as Prometheus sums them),
// also across a schema reduction, a reset and a snapshot; one float input
// makes it a float histogram for good.
func TestNativeIntegerHistograms(t *testing.T) {
	ih := func(schema int32, n uint64) *histogram.Histogram {
		return &histogram.Histogram{Schema: schema, Count: n * 3, Sum: 1.5 * float64(n), ZeroThreshold: 0.001, ZeroCount: n,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{int64(n), 0}}
	}
	e := mustEngine(t, rule10s("n", "rpc", nil))
	push := func(e *Engine, ins ...in) {
		b, names := batchOf(t, ins...)
		kept, _ := e.Process("t", b, names)
		require.Empty(t, kept)
	}
	push(e, nativeHist(pod("rpc", "pod", "a"), 1000, ih(1, 1), nil), nativeHist(pod("rpc", "pod", "b"), 1000, ih(0, 2), nil))
	push(e, nativeHist(pod("rpc", "pod", "a"), 4000, ih(1, 4), nil), nativeHist(pod("rpc", "pod", "b"), 4000, ih(0, 7), nil))
	push(e, nativeHist(pod("rpc", "pod", "a"), 7000, ih(1, 2), nil)) // reset: +all of it
	var c clock
	const out = `t/{__name__="rpc:sum_without_pod"}`
	ps := outputs(t, e.Close(c.at(12000), nil))[out]
	require.Len(t, ps, 1)
	require.True(t, ps[0].Int, "integer inputs, integer sum")
	h := ps[0].H
	// a: +3 then reset +2 = 5 per unit, b: +5: count 3·10, zero 10, sum 15.
	require.Equal(t, int32(0), h.Schema, "merged at the lower schema")
	require.Equal(t, 30.0, h.Count)
	require.Equal(t, 10.0, h.ZeroCount)
	require.Equal(t, 15.0, h.Sum)

	// The state survives a snapshot as integers; a float input turns the
	// output into a float histogram.
	snap, err := e.Snapshot()
	require.NoError(t, err)
	e2 := mustEngine(t, rule10s("n", "rpc", nil))
	require.NoError(t, e2.Restore(snap))
	push(e2, nativeHist(pod("rpc", "pod", "b"), 14000, ih(0, 8), nil))
	ps = outputs(t, e2.Close(c.at(22000), nil))[out]
	require.True(t, ps[0].Int)
	require.Equal(t, 33.0, ps[0].H.Count)
	push(e2, nativeHist(pod("rpc", "pod", "b"), 24000, nil, ih(0, 9).ToFloat(nil)))
	ps = outputs(t, e2.Close(c.at(32000), nil))[out]
	require.False(t, ps[0].Int, "a float input makes it a float histogram")
	require.Equal(t, 36.0, ps[0].H.Count)
}

func TestToIntHistogram(t *testing.T) {
	for name, tc := range map[string]struct {
		fh *histogram.FloatHistogram
		ok bool
	}{
		"whole counts": {&histogram.FloatHistogram{Count: 6, ZeroCount: 1, Sum: 0.5, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}},
			PositiveBuckets: []float64{2, 1}, NegativeSpans: []histogram.Span{{Offset: 1, Length: 1}}, NegativeBuckets: []float64{2}}, true},
		"a fraction":      {&histogram.FloatHistogram{Count: 1.5, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{1.5}}, false},
		"bucket fraction": {&histogram.FloatHistogram{Count: 2, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []float64{1.5, 0.5}}, false},
		"custom buckets": {&histogram.FloatHistogram{Schema: histogram.CustomBucketsSchema, Count: 3, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}},
			PositiveBuckets: []float64{1, 2}, CustomValues: []float64{0.5}}, true},
		"beyond 2^53": {&histogram.FloatHistogram{Count: 1 << 54, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{1 << 54}}, false},
	} {
		t.Run(name, func(t *testing.T) {
			h, ok := toIntHistogram(tc.fh)
			require.Equal(t, tc.ok, ok)
			if ok {
				require.True(t, tc.fh.Equals(h.ToFloat(nil)), "same histogram: %s vs %s", tc.fh, h)
			}
		})
	}
}

func TestNativeCustomBuckets(t *testing.T) {
	e := mustEngine(t, rule10s("n", "nhcb", nil))
	mk := func(n float64) *histogram.FloatHistogram {
		return &histogram.FloatHistogram{Schema: histogram.CustomBucketsSchema, Count: 3 * n, Sum: n,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []float64{n, n, n}, CustomValues: []float64{0.1, 1}}
	}
	for i, ts := range []int64{1000, 6000} {
		b, names := batchOf(t, nativeHist(pod("nhcb", "pod", "a"), ts, nil, mk(float64(1+i))), nativeHist(pod("nhcb", "pod", "b"), ts, nil, mk(float64(10+10*i))))
		kept, _ := e.Process("t", b, names)
		require.Empty(t, kept)
	}
	var c clock
	got := outputs(t, e.Close(c.at(12000), nil))
	h := got[`t/{__name__="nhcb:sum_without_pod"}`][0].H
	require.Equal(t, histogram.CustomBucketsSchema, h.Schema)
	require.Equal(t, []float64{0.1, 1}, h.CustomValues)
	require.Equal(t, []float64{11, 11, 11}, h.PositiveBuckets)
	require.InDelta(t, 33, h.Count, 1e-9)
}

// TestSummary: quantiles are dropped and counted, _sum/_count summed.
func TestSummary(t *testing.T) {
	e := mustEngine(t, rule10s("s", "rt", nil))
	s := writev2.Metadata_METRIC_TYPE_SUMMARY
	mk := func(name, p string, ts int64, v float64, kv ...string) in {
		return in{typ: s, ls: pod(name, append([]string{"pod", p}, kv...)...), samples: []writev2.Sample{{Value: v, Timestamp: ts}}}
	}
	b, names := batchOf(t, mk("rt", "a", 1000, 0.3, "quantile", "0.99"), mk("rt_sum", "a", 1000, 1), mk("rt_count", "a", 1000, 1))
	kept, taken := e.Process("t", b, names)
	require.Empty(t, kept)
	require.Equal(t, 3, taken.Series)
	b, names = batchOf(t, mk("rt_sum", "a", 5000, 4), mk("rt_count", "a", 5000, 6))
	e.Process("t", b, names)
	var c clock
	got := outputs(t, e.Close(c.at(12000), nil))
	require.Equal(t, []string{`t/{__name__="rt:sum_without_pod_count"}`, `t/{__name__="rt:sum_without_pod_sum"}`}, keys(got))
	require.Equal(t, 3.0, got[`t/{__name__="rt:sum_without_pod_sum"}`][0].V)
	require.Equal(t, 5.0, got[`t/{__name__="rt:sum_without_pod_count"}`][0].V)
}

// TestPassThrough: what cannot be aggregated is written unchanged.
func TestPassThrough(t *testing.T) {
	for name, tc := range map[string]struct {
		rule func(*RuleConfig)
		in   in
	}{
		"unknown type":             {nil, in{ls: pod("m", "pod", "a"), samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}},
		"declared differs":         {func(r *RuleConfig) { r.Type = TypeGauge }, counter(pod("m", "pod", "a"), 1, 1)},
		"gauge output for counter": {func(r *RuleConfig) { r.Outputs = []string{"max"} }, counter(pod("m", "pod", "a"), 1, 1)},
		"gauge histogram":          {nil, in{typ: writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM, ls: pod("m", "pod", "a"), samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}},
		"keep_input":               {func(r *RuleConfig) { r.KeepInput = true }, counter(pod("m", "pod", "a"), 1, 1)},
		"shadow":                   {func(r *RuleConfig) { r.Mode = ModeShadow }, counter(pod("m", "pod", "a"), 1, 1)},
		"other tenant":             {func(r *RuleConfig) { r.Tenants = []string{"other"} }, counter(pod("m", "pod", "a"), 1, 1)},
		"selector":                 {func(r *RuleConfig) { r.Match = `m{job="x"}` }, counter(pod("m", "pod", "a"), 1, 1)},
	} {
		t.Run(name, func(t *testing.T) {
			e := mustEngine(t, rule10s("r", "m", tc.rule))
			b, names := batchOf(t, tc.in, counter(pod("other"), 1, 1))
			kept, taken := e.Process("t", b, names)
			require.Equal(t, b, kept)
			require.Zero(t, taken.Series)
		})
	}
}

// TestDeclaredTypeWithoutMetadata: a Remote Write 1.0 series has no
// metadata; a declared type (or a remembered 1.0 family type) applies.
func TestDeclaredTypeWithoutMetadata(t *testing.T) {
	e := mustEngine(t, rule10s("r", "m", nil))
	b, names := batchOf(t, in{ls: pod("m", "pod", "a"), samples: []writev2.Sample{{Value: 1, Timestamp: 1}}})
	kept, _ := e.Process("t", b, names)
	require.Equal(t, b, kept, "unknown type passes")
	e.RememberType("t", "m", int32(writev2.Metadata_METRIC_TYPE_COUNTER))
	kept, taken := e.Process("t", b, names)
	require.Empty(t, kept)
	require.Equal(t, 1, taken.Series)

	e = mustEngine(t, rule10s("r", "m", func(r *RuleConfig) { r.Type = TypeCounter }))
	kept, _ = e.Process("t", b, names)
	require.Empty(t, kept)
}

// TestLateSamples: a sample after its interval closed is dropped and
// counted; a counter's increase is carried by the next sample.
func TestLateSamples(t *testing.T) {
	e := mustEngine(t, rule10s("r", "c", nil))
	a, b := pod("c", "pod", "a"), pod("c", "pod", "b")
	push := func(ins ...in) {
		bb, names := batchOf(t, ins...)
		e.Process("t", bb, names)
	}
	var c clock
	push(counter(a, 1000, 1), counter(b, 1000, 1))
	push(counter(a, 9000, 5))
	require.Empty(t, e.Close(c.at(10500), nil), "max_delay not passed yet: nothing")
	push(counter(b, 9500, 3)) // within max_delay: counts for [0,10s)
	got := outputs(t, e.Close(c.at(11000), nil))
	require.Equal(t, []point{{T: 9999, V: 6}}, got[`t/{__name__="c:sum_without_pod"}`])
	push(counter(b, 9800, 4))   // late: dropped
	push(counter(b, 12000, 10)) // carries +7 (from 3)
	got = outputs(t, e.Close(c.at(21000), nil))
	require.Equal(t, []point{{T: 19999, V: 13}}, got[`t/{__name__="c:sum_without_pod"}`])
}
