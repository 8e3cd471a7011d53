package integration

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

const (
	contentTypeV1 = "application/x-protobuf"
	contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
)

// fixtureSeries is one series the round-trip tests send and expect back.
type fixtureSeries struct {
	labels     labels.Labels
	mtype      model
	unit, help string
	floats     []prompb.Sample // timestamp + value
	hists      []*histogram.Histogram
	floatHists []*histogram.FloatHistogram
	histTS     []int64
	exemplar   *prompb.Exemplar // attached to the first float sample
}

type model = prompb.MetricMetadata_MetricType

// fixture builds series covering floats (incl. NaN and ±Inf), counters with
// exemplars, exponential native histograms (int and float), native
// histograms with custom buckets, metadata, and enough plain series to
// spread over every ingester.
func fixture(prefix string, now time.Time) []fixtureSeries {
	base := now.Add(-5 * time.Minute).UnixMilli()
	ts := func(i int) int64 { return base + int64(i)*15_000 }
	floats := func(vals ...float64) []prompb.Sample {
		out := make([]prompb.Sample, len(vals))
		for i, v := range vals {
			out[i] = prompb.Sample{Timestamp: ts(i), Value: v}
		}
		return out
	}
	expo := &histogram.Histogram{
		Schema: 0, ZeroThreshold: 0.001, ZeroCount: 1, Count: 7, Sum: 12.5,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		PositiveBuckets: []int64{2, 1, -2}, // 2, 3, 1
	}
	custom := &histogram.Histogram{
		Schema: histogram.CustomBucketsSchema, Count: 6, Sum: 2.75,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
		PositiveBuckets: []int64{1, 2, -1}, // 1, 3, 2
		CustomValues:    []float64{0.1, 0.5, 1},
	}
	out := []fixtureSeries{
		{
			labels: labels.FromStrings("__name__", prefix+"_requests_total", "code", "200", "job", "api"),
			mtype:  prompb.MetricMetadata_COUNTER, help: "Requests served.",
			floats:   floats(1, 2, 3, 5, 8),
			exemplar: &prompb.Exemplar{Labels: []prompb.Label{{Name: "trace_id", Value: "4bf92f3577b34da6"}}, Value: 1, Timestamp: ts(0)},
		},
		{
			labels: labels.FromStrings("__name__", prefix+"_temperature_celsius", "room", "lab"),
			mtype:  prompb.MetricMetadata_GAUGE, unit: "celsius", help: "Temperature.",
			floats: floats(21.5, math.NaN(), math.Inf(1), math.Inf(-1), -3.25),
		},
		{
			labels: labels.FromStrings("__name__", prefix+"_latency_seconds", "job", "api"),
			mtype:  prompb.MetricMetadata_HISTOGRAM, unit: "seconds", help: "Latency.",
			hists:  []*histogram.Histogram{expo, expo},
			histTS: []int64{ts(0), ts(1)},
		},
		{
			labels:     labels.FromStrings("__name__", prefix+"_size_bytes", "job", "api"),
			mtype:      prompb.MetricMetadata_HISTOGRAM,
			floatHists: []*histogram.FloatHistogram{expo.ToFloat(nil)},
			histTS:     []int64{ts(0)},
		},
		{
			labels: labels.FromStrings("__name__", prefix+"_nhcb_seconds", "job", "api"),
			mtype:  prompb.MetricMetadata_HISTOGRAM,
			hists:  []*histogram.Histogram{custom},
			histTS: []int64{ts(2)},
		},
	}
	for i := range 40 {
		out = append(out, fixtureSeries{
			labels: labels.FromStrings("__name__", fmt.Sprintf("%s_spread_%02d", prefix, i), "idx", fmt.Sprint(i)),
			floats: floats(float64(i), float64(i)+0.5),
		})
	}
	return out
}

// encodeV1 renders the fixture as a snappy-compressed RW 1.0 request, with
// metadata as 1.0 family metadata.
func encodeV1(t *testing.T, series []fixtureSeries) []byte {
	t.Helper()
	var req prompb.WriteRequest
	for _, s := range series {
		pts := prompb.TimeSeries{Labels: prompb.FromLabels(s.labels, nil), Samples: s.floats}
		for i, h := range s.hists {
			pts.Histograms = append(pts.Histograms, prompb.FromIntHistogram(s.histTS[i], h))
		}
		for i, h := range s.floatHists {
			pts.Histograms = append(pts.Histograms, prompb.FromFloatHistogram(s.histTS[i], h))
		}
		if s.exemplar != nil {
			pts.Exemplars = []prompb.Exemplar{*s.exemplar}
		}
		req.Timeseries = append(req.Timeseries, pts)
		if s.mtype != prompb.MetricMetadata_UNKNOWN {
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{
				Type: s.mtype, MetricFamilyName: s.labels.Get("__name__"), Help: s.help, Unit: s.unit,
			})
		}
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// encodeV2 renders the fixture as a snappy-compressed RW 2.0 request with
// per-series metadata and a start timestamp on every float sample.
func encodeV2(t *testing.T, series []fixtureSeries) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for _, s := range series {
		ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(s.labels, nil)}
		for _, f := range s.floats {
			ts.Samples = append(ts.Samples, writev2.Sample{Value: f.Value, Timestamp: f.Timestamp})
		}
		for i, h := range s.hists {
			ts.Histograms = append(ts.Histograms, writev2.FromIntHistogram(0, s.histTS[i], h))
		}
		for i, h := range s.floatHists {
			ts.Histograms = append(ts.Histograms, writev2.FromFloatHistogram(0, s.histTS[i], h))
		}
		if s.exemplar != nil {
			var lb []labels.Label
			for _, l := range s.exemplar.Labels {
				lb = append(lb, labels.Label{Name: l.Name, Value: l.Value})
			}
			ts.Exemplars = []writev2.Exemplar{{
				LabelsRefs: st.SymbolizeLabels(labels.New(lb...), nil),
				Value:      s.exemplar.Value, Timestamp: s.exemplar.Timestamp,
			}}
		}
		if s.mtype != prompb.MetricMetadata_UNKNOWN {
			ts.Metadata = writev2.Metadata{
				Type:    writev2.Metadata_MetricType(s.mtype),
				HelpRef: st.Symbolize(s.help), UnitRef: st.Symbolize(s.unit),
			}
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// counts returns the samples, histograms and exemplars in series.
func counts(series []fixtureSeries) (samples, hists, exemplars int) {
	for _, s := range series {
		samples += len(s.floats)
		hists += len(s.hists) + len(s.floatHists)
		if s.exemplar != nil {
			exemplars++
		}
	}
	return samples, hists, exemplars
}
