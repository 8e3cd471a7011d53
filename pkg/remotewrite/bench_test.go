package remotewrite

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// BenchmarkDecodeValidateSplit measures the distributor's per-request edge
// work: decode + convert + validate 1,000 series of 10 labels, then split
// them between 3 owners with one Builder each.
func BenchmarkDecodeValidateSplit(b *testing.B) {
	const series, labels, metrics, owners = 1000, 10, 50, 3
	payloads := map[string]struct {
		protocol Protocol
		body     []byte
	}{
		"v1": {ProtocolV1, snappy.Encode(nil, marshalV1(b, genV1(series, labels, metrics)))},
		"v2": {ProtocolV2, snappy.Encode(nil, marshalV2(b, genV2(series, labels, metrics)))},
	}
	for _, name := range []string{"v1", "v2"} {
		p := payloads[name]
		b.Run(name, func(b *testing.B) {
			d := NewDecoder(DefaultConfig(), testFlagPrefix)
			builders := make([]*Builder, owners)
			for i := range builders {
				builders[i] = NewBuilder()
			}
			body := bytes.NewReader(p.body)
			r := httptest.NewRequest(http.MethodPost, "/api/v1/push", body)
			r.Header.Set("Content-Type", p.protocol.ContentType())
			r.Header.Set("Content-Encoding", "snappy")
			b.ReportAllocs()
			b.SetBytes(int64(len(p.body)))
			b.ResetTimer()
			for b.Loop() {
				body.Reset(p.body)
				got, err := d.Decode(r)
				if err != nil {
					b.Fatal(err)
				}
				req := &got.Request
				for i := range req.Timeseries {
					ts := &req.Timeseries[i]
					builders[xxhash.Sum64String(MetricName(req, ts))%owners].AddSeries(req, ts)
				}
				for _, bl := range builders {
					_ = bl.Request()
					bl.Reset()
				}
				got.Release()
			}
			b.ReportMetric(float64(series)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

func TestBenchmarkFixtureValid(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	got, err := d.Decode(newHTTPRequest(ProtocolV2, marshalV2(t, genV2(1000, 10, 50))))
	require.NoError(t, err)
	require.Zero(t, got.Rejected)
	require.Len(t, got.Request.Timeseries, 1000)
}

// BenchmarkValidation sets the per-series cost of validation, and of the
// checks it runs, against the cost of decoding: 1,000 series of 10 labels
// (one sample each, or one native histogram, or one exemplar). Every
// sub-benchmark reports ns/series; allocs/op are per 1,000 series.
func BenchmarkValidation(b *testing.B) {
	const series, labels, metrics = 1000, 10, 50
	v1 := genV1(series, labels, metrics)
	v1Payload := marshalV1(b, v1)
	v2 := genV2(series, labels, metrics)
	v2Payload := marshalV2(b, v2)

	// vmagent's order: instance and job appended after the scraped labels.
	vmagent := genV1(series, labels-2, metrics)
	for i := range vmagent.Timeseries {
		ts := &vmagent.Timeseries[i]
		ts.Labels = append(ts.Labels, prompb.Label{Name: "instance", Value: "127.0.0.1:9100"}, prompb.Label{Name: "job", Value: "node"})
	}
	unsorted := convertV1(vmagent)
	pristine := make([][]uint32, len(unsorted.Timeseries))
	for i := range unsorted.Timeseries {
		pristine[i] = append([]uint32(nil), unsorted.Timeseries[i].LabelsRefs...)
	}

	withHists := genV2(series, labels, metrics)
	withExemplars := genV2(series, labels, metrics)
	st := writev2.NewSymbolTable()
	for _, s := range withExemplars.Symbols {
		st.Symbolize(s)
	}
	for i := range withHists.Timeseries {
		withHists.Timeseries[i].Samples = nil
		withHists.Timeseries[i].Histograms = []writev2.Histogram{intHist(nil)}
		withExemplars.Timeseries[i].Exemplars = []writev2.Exemplar{{LabelsRefs: v2Refs(&st, "trace_id", fmt.Sprintf("%016x", i)), Value: 1, Timestamp: 1}}
	}
	withExemplars.Symbols = st.Symbols()

	perSeries := func(b *testing.B, f func()) {
		b.ReportAllocs()
		for b.Loop() {
			f()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/series, "ns/series")
	}
	opts := validationOpts{}
	b.Run("decode/v1", func(b *testing.B) {
		perSeries(b, func() {
			if _, _, _, err := decodeV1(v1Payload, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("decode/v2", func(b *testing.B) {
		perSeries(b, func() {
			var req writev2.Request
			if err := req.Unmarshal(v2Payload); err != nil {
				b.Fatal(err)
			}
		})
	})
	validate := func(req *writev2.Request) func() {
		return func() {
			if r, first, _ := validateRequest(req, opts); r != 0 {
				b.Fatal(first)
			}
		}
	}
	b.Run("validate/sorted", func(b *testing.B) { perSeries(b, validate(v2)) })
	b.Run("validate/histograms", func(b *testing.B) { perSeries(b, validate(withHists)) })
	b.Run("validate/exemplars", func(b *testing.B) { perSeries(b, validate(withExemplars)) })
	b.Run("validate/legacy", func(b *testing.B) {
		legacy := validationOpts{legacyNames: true}
		perSeries(b, func() {
			if r, first, _ := validateRequest(v2, legacy); r != 0 {
				b.Fatal(first)
			}
		})
	})
	b.Run("validate/vmagent-order", func(b *testing.B) {
		perSeries(b, func() {
			for i := range unsorted.Timeseries {
				copy(unsorted.Timeseries[i].LabelsRefs, pristine[i])
			}
			if r, first, sorted := validateRequest(&unsorted, opts); r != 0 || sorted != series {
				b.Fatal(first, sorted)
			}
		})
	})
	b.Run("validate/vmagent-order-copy-only", func(b *testing.B) {
		perSeries(b, func() {
			for i := range unsorted.Timeseries {
				copy(unsorted.Timeseries[i].LabelsRefs, pristine[i])
			}
		})
	})

	// The added checks alone.
	b.Run("check/symbols-utf8", func(b *testing.B) {
		perSeries(b, func() {
			if !validUTF8(v2.Symbols) {
				b.Fatal("invalid symbols")
			}
		})
	})
	b.Run("check/label-text-per-label", func(b *testing.B) {
		perSeries(b, func() {
			for i := range v2.Timeseries {
				refs := v2.Timeseries[i].LabelsRefs
				for j := 0; j < len(refs); j += 2 {
					if p := checkLabelText(v2.Symbols[refs[j]], v2.Symbols[refs[j+1]], opts); p.kind != problemNone {
						b.Fatal(p.kind)
					}
				}
			}
		})
	})
	b.Run("check/histogram", func(b *testing.B) {
		perSeries(b, func() {
			for i := range withHists.Timeseries {
				if p := checkHistograms(withHists.Timeseries[i].Histograms); p.kind != problemNone {
					b.Fatal(p.kind)
				}
			}
		})
	})
	b.Run("check/exemplar-labels", func(b *testing.B) {
		perSeries(b, func() {
			for i := range withExemplars.Timeseries {
				e := &withExemplars.Timeseries[i].Exemplars[0]
				if p := checkExemplarLabels(withExemplars.Symbols, 0, e.LabelsRefs); p.kind != problemNone {
					b.Fatal(p.kind)
				}
			}
		})
	})
	b.Run("check/sort-vmagent-order", func(b *testing.B) {
		perSeries(b, func() {
			for i := range unsorted.Timeseries {
				refs := unsorted.Timeseries[i].LabelsRefs
				copy(refs, pristine[i])
				if p := sortLabelRefs(unsorted.Symbols, refs); p.kind != problemNone {
					b.Fatal(p.kind)
				}
			}
		})
	})
}
