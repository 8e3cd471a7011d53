package forward

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// familyMeta returns the RW 1.0 metadata genBatch attaches.
func familyMeta() []prompb.MetricMetadata {
	return []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests", Help: "Total requests."},
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "orphan_gauge", Help: "A family without series in the batch.", Unit: "bytes"},
	}
}

// genBatch builds a batch of nSeries series (ids first..first+nSeries-1)
// covering float samples with start timestamps, exemplars, integer and
// float native histograms, custom-bucket histograms and series metadata.
func genBatch(tenant string, first, nSeries int, ts int64) Batch {
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for id := first; id < first+nSeries; id++ {
		inst := fmt.Sprintf("host-%d", id)
		var s writev2.TimeSeries
		switch id % 4 {
		case 0:
			s.LabelsRefs = st.SymbolizeLabels(lbls("__name__", "http_requests_total", "job", "api", "instance", inst), nil)
			s.Samples = []writev2.Sample{{Value: float64(ts) + 0.5, Timestamp: ts, StartTimestamp: ts - 60_000}}
			s.Exemplars = []writev2.Exemplar{{
				LabelsRefs: st.SymbolizeLabels(lbls("trace_id", fmt.Sprintf("t%d-%d", id, ts)), nil),
				Value:      1.25, Timestamp: ts - 1,
			}}
		case 1:
			h := &histogram.Histogram{
				CounterResetHint: histogram.NotCounterReset,
				Schema:           1, Count: 10, Sum: 5.5, ZeroThreshold: 0.001, ZeroCount: 1,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}}, PositiveBuckets: []int64{2, 1, -1},
				NegativeSpans: []histogram.Span{{Offset: -1, Length: 1}}, NegativeBuckets: []int64{3},
			}
			s.LabelsRefs = st.SymbolizeLabels(lbls("__name__", "latency_seconds", "instance", inst), nil)
			s.Histograms = []writev2.Histogram{writev2.FromIntHistogram(ts-30_000, ts, h)}
			s.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM, HelpRef: st.Symbolize("Request latency."), UnitRef: st.Symbolize("seconds")}
		case 2:
			fh := &histogram.FloatHistogram{
				CounterResetHint: histogram.GaugeType,
				Schema:           0, Count: 3.5, Sum: -2.25, ZeroThreshold: 0.01, ZeroCount: 0.5,
				PositiveSpans: []histogram.Span{{Offset: 1, Length: 2}}, PositiveBuckets: []float64{1.5, 1.5},
			}
			s.LabelsRefs = st.SymbolizeLabels(lbls("__name__", "queue_fill", "instance", inst), nil)
			s.Histograms = []writev2.Histogram{writev2.FromFloatHistogram(0, ts, fh)}
			s.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM, HelpRef: st.Symbolize("Queue fill.")}
		case 3:
			h := &histogram.Histogram{
				Schema: histogram.CustomBucketsSchema, Count: 6, Sum: 9,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 3}}, PositiveBuckets: []int64{1, 2, -1},
				CustomValues: []float64{0.1, 0.5, 1},
			}
			s.LabelsRefs = st.SymbolizeLabels(lbls("__name__", "custom_buckets_seconds", "instance", inst), nil)
			s.Histograms = []writev2.Histogram{writev2.FromIntHistogram(0, ts, h)}
		}
		req.Timeseries = append(req.Timeseries, s)
	}
	req.Symbols = append([]string(nil), st.Symbols()...)
	return Batch{Tenant: tenant, Request: req, Metadata: familyMeta()}
}

// floatBatch builds one float sample for each of nSeries simple series.
func floatBatch(tenant string, first, nSeries int, ts int64) Batch {
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for id := first; id < first+nSeries; id++ {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(lbls("__name__", "up", "instance", fmt.Sprintf("host-%d", id)), nil),
			Samples:    []writev2.Sample{{Value: float64(ts), Timestamp: ts}},
		})
	}
	req.Symbols = append([]string(nil), st.Symbols()...)
	return Batch{Tenant: tenant, Request: req}
}

// expected is what a receiver must end up with after the given batches.
func expected(batches ...Batch) *store {
	s := newStore()
	for i := range batches {
		s.addV2(&batches[i].Request)
		for _, m := range batches[i].Metadata {
			s.Meta[m.MetricFamilyName] = nMeta{Type: m.Type, Help: m.Help, Unit: m.Unit}
		}
	}
	return s
}
