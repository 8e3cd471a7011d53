package record_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
)

// benchBatch is a batch of n float series of one sample each, in the order
// a forwarder reads them from the WAL, with label sets of one of two
// shapes:
//
//   - "probe": the perf tools' load (rwprobe): __name__ of 1,000 metrics,
//     a unique id, instance of 10, job, and env (the perf rules' added
//     label). Consecutive series differ in name, id and instance.
//   - "k8s": what a scrape of Kubernetes targets sends: 20 metrics of each
//     target in turn, nine labels of which only __name__ changes from one
//     series to the next within a target.
func benchBatch(shape string, n int) []byte {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := range n {
		var ls labels.Labels
		switch shape {
		case "probe":
			ls = labels.FromStrings("__name__", "rwload_metric_"+strconv.Itoa(i%1000), "env", "perf",
				"id", strconv.Itoa(i), "instance", "i-N", "job", "rwprobe")
			if i%2 == 1 {
				ls = labels.FromStrings("__name__", "rwload_metric_"+strconv.Itoa(i%1000), "env", "perf",
					"id", strconv.Itoa(i), "instance", "i-"+strconv.Itoa(i%10), "job", "rwprobe")
			}
		case "k8s":
			t := i / 20
			pod := "checkout-7d9f8b6c5-" + strconv.Itoa(t)
			ls = labels.FromStrings("__name__", "http_server_requests_"+strconv.Itoa(i%20), "container", "checkout",
				"endpoint", "metrics", "instance", "10.1."+strconv.Itoa(t/250)+"."+strconv.Itoa(t%250)+":8080",
				"job", "checkout", "namespace", "shop", "pod", pod, "service", "checkout", "code", "200")
		}
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000}},
		})
	}
	req.Symbols = st.Symbols()
	return record.FromV2(nil, req)
}

// BenchmarkEncode measures rendering a forward request of 10,000 series
// (forward.max-samples-per-send's default) from its batch, per protocol:
// 1.0 copies each series, 2.0 builds the symbol table.
func BenchmarkEncode(b *testing.B) {
	const n = 10_000
	for _, shape := range []string{"probe", "k8s"} {
		batch := benchBatch(shape, n)
		b.Run(fmt.Sprintf("%s/v2", shape), func(b *testing.B) {
			var v record.V2Encoder
			b.ReportAllocs()
			for b.Loop() {
				v.Reset(nil)
				for it := record.NewIter(batch); it.Next(); {
					v.Add(it.Entry())
				}
				_ = v.Bytes()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
		b.Run(fmt.Sprintf("%s/v1", shape), func(b *testing.B) {
			var v record.V1Encoder
			b.ReportAllocs()
			for b.Loop() {
				v.Reset(nil)
				for it := record.NewIter(batch); it.Next(); {
					v.Add(it.Entry())
				}
				_ = v.Bytes()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
	}
}

// BenchmarkValidate measures what an ingester checks of every series it
// is pushed (Entry.Validate), per series.
func BenchmarkValidate(b *testing.B) {
	const n = 10_000
	batch := benchBatch("k8s", n)
	b.ReportAllocs()
	for b.Loop() {
		for it := record.NewIter(batch); it.Next(); {
			if _, err := it.Entry().Validate(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
}
