package remotewrite

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// fuzzKind bits choose what a fuzzed series carries.
const (
	fuzzSamples   = 1 << iota // a float sample
	fuzzHistogram             // a native histogram
	fuzzFloatHist             // the histogram has float counts
)

// fuzzSeries builds one series from the fuzzer's primitives: labels are
// "\x00"-separated, the first being the metric name and the rest name/value
// pairs in the order sent; exemplars are "\x01"-separated label lists;
// spans are 5 bytes each (little-endian int32 offset, uint8 length);
// buckets are one signed byte each (a delta, or a count in halves); bounds
// are one signed byte each in quarters, with 127 as +Inf and -128 as NaN.
func fuzzSeries(labelBlob, exemplarBlob string, kind uint8, schema int32, count, zeroCount uint64, sum, zeroThreshold float64,
	posSpans, negSpans, posBuckets, negBuckets, bounds []byte) *writev2.Request {
	st := writev2.NewSymbolTable()
	pairs := func(s string) []string {
		kv := strings.Split(s, "\x00")
		if len(kv)%2 != 0 {
			kv = append(kv, "")
		}
		return kv
	}
	parts := strings.SplitN(labelBlob, "\x00", 2)
	kv := []string{"__name__", parts[0]}
	if len(parts) == 2 {
		kv = append(kv, pairs(parts[1])...)
	}
	ts := writev2.TimeSeries{LabelsRefs: v2Refs(&st, kv...)}
	if exemplarBlob != "" {
		for _, e := range strings.Split(exemplarBlob, "\x01") {
			ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: v2Refs(&st, pairs(e)...), Value: 1, Timestamp: 1})
		}
	}
	if kind&fuzzSamples != 0 {
		ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1}}
	}
	if kind&fuzzHistogram != 0 {
		h := writev2.Histogram{
			Schema: schema, Sum: sum, ZeroThreshold: zeroThreshold, Timestamp: 1,
			PositiveSpans: fuzzSpans(posSpans), NegativeSpans: fuzzSpans(negSpans),
		}
		for _, b := range bounds {
			switch int8(b) {
			case 127:
				h.CustomValues = append(h.CustomValues, math.Inf(1))
			case -128:
				h.CustomValues = append(h.CustomValues, math.NaN())
			default:
				h.CustomValues = append(h.CustomValues, float64(int8(b))/4)
			}
		}
		if kind&fuzzFloatHist != 0 {
			h.Count = &writev2.Histogram_CountFloat{CountFloat: float64(int64(count)) / 2}
			h.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: float64(int64(zeroCount)) / 2}
			h.PositiveCounts, h.NegativeCounts = fuzzCounts(posBuckets), fuzzCounts(negBuckets)
		} else {
			h.Count = &writev2.Histogram_CountInt{CountInt: count}
			h.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: zeroCount}
			h.PositiveDeltas, h.NegativeDeltas = fuzzDeltas(posBuckets), fuzzDeltas(negBuckets)
		}
		ts.Histograms = []writev2.Histogram{h}
	}
	return &writev2.Request{Symbols: st.Symbols(), Timeseries: []writev2.TimeSeries{ts}}
}

func fuzzSpans(b []byte) []writev2.BucketSpan {
	var out []writev2.BucketSpan
	for ; len(b) >= 5; b = b[5:] {
		out = append(out, writev2.BucketSpan{Offset: int32(binary.LittleEndian.Uint32(b)), Length: uint32(b[4])})
	}
	return out
}

func fuzzDeltas(b []byte) []int64 {
	var out []int64
	for _, x := range b {
		out = append(out, int64(int8(x)))
	}
	return out
}

func fuzzCounts(b []byte) []float64 {
	var out []float64
	for _, x := range b {
		out = append(out, float64(int8(x))/2)
	}
	return out
}

// FuzzValidateMatchesReference holds the validator to Prometheus's own
// code (referenceVerdict): a series promgov keeps is one Prometheus stores
// whole, and a series Prometheus stores whole is kept, with one documented
// exception: a histogram finer than schema 8 whose buckets only agree with
// its spans and count once Prometheus has reduced it to schema 8.
func FuzzValidateMatchesReference(f *testing.F) {
	spans := func(offLen ...int) []byte { // offset, length pairs
		var b []byte
		for i := 0; i+1 < len(offLen); i += 2 {
			b = binary.LittleEndian.AppendUint32(b, uint32(int32(offLen[i])))
			b = append(b, byte(offLen[i+1]))
		}
		return b
	}
	none := []byte(nil)
	f.Add("m\x00job\x00node\x00instance\x00h", "", uint8(fuzzSamples), int32(0), uint64(0), uint64(0), 0.0, 0.0, none, none, none, none, none, false)
	f.Add("m\x00quantile\x000.5", "trace_id\x00abc", uint8(fuzzSamples), int32(0), uint64(0), uint64(0), 0.0, 0.0, none, none, none, none, none, true)
	// The valid histograms of the rule cases: zero count 1, buckets 2, 3, 1.
	f.Add("m", "", uint8(fuzzHistogram), int32(0), uint64(7), uint64(1), 12.5, 0.001, spans(0, 2, 1, 1), none, []byte{2, 1, 0xfe}, none, none, false)
	f.Add("m", "", uint8(fuzzHistogram|fuzzFloatHist), int32(9), uint64(14), uint64(2), 12.5, 0.001, spans(0, 2, 1, 1), spans(-1, 1), []byte{4, 6, 2}, []byte{1}, none, false)
	f.Add("m", "", uint8(fuzzHistogram), int32(-53), uint64(6), uint64(0), 2.75, 0.0, spans(0, 3), none, []byte{1, 2, 0xff}, none, []byte{1, 2, 4}, false)
	f.Fuzz(func(t *testing.T, labelBlob, exemplarBlob string, kind uint8, schema int32, count, zeroCount uint64, sum, zeroThreshold float64,
		posSpans, negSpans, posBuckets, negBuckets, bounds []byte, legacy bool) {
		opts := validationOpts{legacyNames: legacy}
		req := fuzzSeries(labelBlob, exemplarBlob, kind, schema, count, zeroCount, sum, zeroThreshold, posSpans, negSpans, posBuckets, negBuckets, bounds)
		sent := req.Timeseries[0]
		sent.LabelsRefs = append([]uint32(nil), sent.LabelsRefs...)
		refErr := referenceVerdict(req.Symbols, &sent, referenceScheme(opts))

		rejected, first, _ := validateRequest(req, opts)
		for i := range req.Timeseries {
			require.NoError(t, referenceVerdict(req.Symbols, &req.Timeseries[i], referenceScheme(opts)),
				"promgov kept series %d, which Prometheus does not store whole", i)
		}
		if refErr == nil && rejected > 0 {
			require.True(t, validOnlyOnceReduced(&sent), "Prometheus stores the series, promgov refused it: %s", first)
		}
	})
}

// validOnlyOnceReduced reports whether ts has a histogram of schema 9 to 52
// that is invalid at its own schema (validated as if it were schema 8).
func validOnlyOnceReduced(ts *writev2.TimeSeries) bool {
	for _, h := range ts.Histograms {
		if h.Schema > 8 && h.Schema <= schemaExpMaxReduced {
			h.Schema = 8
			if referenceHistogram(&h) != nil {
				return true
			}
		}
	}
	return false
}
