package remotewrite

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// v1Fixture returns a V1 request covering every field the conversion maps,
// and the V2 views it must convert to.
func v1Fixture() (*prompb.WriteRequest, []seriesView) {
	intHist := prompb.Histogram{
		Count:          &prompb.Histogram_CountInt{CountInt: 12},
		Sum:            18.4,
		Schema:         1,
		ZeroThreshold:  1e-128,
		ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: 2},
		NegativeSpans:  []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		NegativeDeltas: []int64{1, 1, -1},
		PositiveSpans:  []prompb.BucketSpan{{Offset: -2, Length: 3}},
		PositiveDeltas: []int64{1, 2, -1},
		ResetHint:      prompb.Histogram_NO,
		Timestamp:      1000,
	}
	floatHist := prompb.Histogram{
		Count:          &prompb.Histogram_CountFloat{CountFloat: 7.5},
		Sum:            -3.25,
		Schema:         -2,
		ZeroThreshold:  0.001,
		ZeroCount:      &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
		NegativeSpans:  []prompb.BucketSpan{{Offset: 3, Length: 1}},
		NegativeCounts: []float64{1.5},
		PositiveSpans:  []prompb.BucketSpan{{Offset: 1, Length: 2}},
		PositiveCounts: []float64{2.5, 3},
		ResetHint:      prompb.Histogram_GAUGE,
		Timestamp:      2000,
	}
	customHist := prompb.Histogram{
		Count:          &prompb.Histogram_CountInt{CountInt: 6},
		Sum:            9,
		Schema:         -53,
		PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 3}},
		PositiveDeltas: []int64{1, 2, -1}, // 1, 3, 2
		CustomValues:   []float64{0.1, 0.5, 1},
		ResetHint:      prompb.Histogram_YES,
		Timestamp:      3000,
	}
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  v1Labels("__name__", "http_requests_total", "job", "api", "path", "/x"),
				Samples: []prompb.Sample{{Value: 1, Timestamp: 10}, {Value: 2, Timestamp: 20}},
				Exemplars: []prompb.Exemplar{
					{Labels: v1Labels("span_id", "s1", "trace_id", "t1"), Value: 1.5, Timestamp: 15},
					{Value: 2, Timestamp: 16},
				},
			},
			{
				Labels:     v1Labels("__name__", "latency_seconds", "job", "api"),
				Histograms: []prompb.Histogram{intHist, floatHist},
				Exemplars:  []prompb.Exemplar{{Labels: v1Labels("trace_id", "t2"), Value: 0.2, Timestamp: 1000}},
			},
			{
				Labels:     v1Labels("__name__", "custom_seconds"),
				Histograms: []prompb.Histogram{customHist},
			},
			{
				Labels:     v1Labels("__name__", "mixed", "job", "api"),
				Samples:    []prompb.Sample{{Value: 3, Timestamp: 30}},
				Histograms: []prompb.Histogram{intHist},
			},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests.", Unit: ""},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "latency_seconds", Help: "Latency.", Unit: "seconds"},
		},
	}

	wantInt := writev2.Histogram{
		Count:          &writev2.Histogram_CountInt{CountInt: 12},
		Sum:            18.4,
		Schema:         1,
		ZeroThreshold:  1e-128,
		ZeroCount:      &writev2.Histogram_ZeroCountInt{ZeroCountInt: 2},
		NegativeSpans:  []writev2.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		NegativeDeltas: []int64{1, 1, -1},
		PositiveSpans:  []writev2.BucketSpan{{Offset: -2, Length: 3}},
		PositiveDeltas: []int64{1, 2, -1},
		ResetHint:      writev2.Histogram_RESET_HINT_NO,
		Timestamp:      1000,
	}
	wantFloat := writev2.Histogram{
		Count:          &writev2.Histogram_CountFloat{CountFloat: 7.5},
		Sum:            -3.25,
		Schema:         -2,
		ZeroThreshold:  0.001,
		ZeroCount:      &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: 0.5},
		NegativeSpans:  []writev2.BucketSpan{{Offset: 3, Length: 1}},
		NegativeCounts: []float64{1.5},
		PositiveSpans:  []writev2.BucketSpan{{Offset: 1, Length: 2}},
		PositiveCounts: []float64{2.5, 3},
		ResetHint:      writev2.Histogram_RESET_HINT_GAUGE,
		Timestamp:      2000,
	}
	wantCustom := writev2.Histogram{
		Count:          &writev2.Histogram_CountInt{CountInt: 6},
		Sum:            9,
		Schema:         -53,
		PositiveSpans:  []writev2.BucketSpan{{Offset: 0, Length: 3}},
		PositiveDeltas: []int64{1, 2, -1}, // 1, 3, 2
		CustomValues:   []float64{0.1, 0.5, 1},
		ResetHint:      writev2.Histogram_RESET_HINT_YES,
		Timestamp:      3000,
	}
	noMeta := "METRIC_TYPE_UNSPECIFIED help=\"\" unit=\"\""
	want := []seriesView{
		{
			Labels:     `{__name__="custom_seconds"}`,
			Histograms: []writev2.Histogram{wantCustom},
			Metadata:   noMeta,
		},
		{
			Labels:    `{__name__="http_requests_total", job="api", path="/x"}`,
			Samples:   []writev2.Sample{{Value: 1, Timestamp: 10}, {Value: 2, Timestamp: 20}},
			Exemplars: []string{`{span_id="s1", trace_id="t1"} 1.5@15`, `{} 2@16`},
			Metadata:  noMeta,
		},
		{
			Labels:     `{__name__="latency_seconds", job="api"}`,
			Histograms: []writev2.Histogram{wantInt, wantFloat},
			Exemplars:  []string{`{trace_id="t2"} 0.2@1000`},
			Metadata:   noMeta,
		},
		{
			Labels:   `{__name__="mixed", job="api"}`,
			Samples:  []writev2.Sample{{Value: 3, Timestamp: 30}},
			Metadata: noMeta,
		},
		{
			Labels:     `{__name__="mixed", job="api"}`,
			Histograms: []writev2.Histogram{wantInt},
			Metadata:   noMeta,
		},
	}
	return req, want
}

func TestConvertV1(t *testing.T) {
	in, want := v1Fixture()
	got := convertV1(in)
	require.Equal(t, "", got.Symbols[0])
	rejected, first, _ := validateRequest(&got, validationOpts{})
	require.Zero(t, rejected, first)
	require.Equal(t, want, viewRequest(&got))
	// The mixed 1.0 series is split, samples first.
	require.Len(t, got.Timeseries, 5)
	require.NotEmpty(t, got.Timeseries[3].Samples)
	require.NotEmpty(t, got.Timeseries[4].Histograms)
}

func TestConvertV1RoundTripThroughWire(t *testing.T) {
	in, want := v1Fixture()
	wantMeta := append([]prompb.MetricMetadata(nil), in.Metadata...)
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	got, err := d.Decode(newHTTPRequest(ProtocolV1, marshalV1(t, in)))
	require.NoError(t, err)
	require.Zero(t, got.Rejected, got.FirstInvalid)
	require.Equal(t, want, viewRequest(&got.Request))
	require.Equal(t, wantMeta, got.Metadata)
	for i := range got.Request.Timeseries {
		require.Equal(t, writev2.Metadata{}, got.Request.Timeseries[i].Metadata, "1.0 metadata must not be attached to series")
	}

	// The internal form survives its own wire encoding (as sent to ingesters).
	var back writev2.Request
	require.NoError(t, back.Unmarshal(marshalV2(t, &got.Request)))
	require.Equal(t, want, viewRequest(&back))

	samples, hists, exemplars := Counts(&got.Request)
	require.Equal(t, []int{3, 4, 3}, []int{samples, hists, exemplars})
}

func TestConvertV1Empty(t *testing.T) {
	got := convertV1(&prompb.WriteRequest{})
	require.Equal(t, []string{""}, got.Symbols)
	require.Empty(t, got.Timeseries)
}
