package remotewrite

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// v1Labels builds sorted-as-given prompb labels from name/value pairs.
func v1Labels(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// v2Series symbolizes name/value pairs into st, in the order given.
func v2Refs(st *writev2.SymbolsTable, kv ...string) []uint32 {
	out := make([]uint32, 0, len(kv))
	for _, s := range kv {
		out = append(out, st.Symbolize(s))
	}
	return out
}

func marshalV1(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}

func marshalV2(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	b, err := req.Marshal()
	require.NoError(t, err)
	return b
}

// newHTTPRequest builds a remote write POST with a snappy-compressed payload.
func newHTTPRequest(p Protocol, payload []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/push", bytes.NewReader(snappy.Encode(nil, payload)))
	r.Header.Set("Content-Type", p.ContentType())
	r.Header.Set("Content-Encoding", "snappy")
	return r
}

// seriesView is a symbol-free rendering of a series for comparisons.
type seriesView struct {
	Labels     string
	Samples    []writev2.Sample
	Histograms []writev2.Histogram
	Exemplars  []string
	Metadata   string
}

func viewSeries(req *writev2.Request, ts *writev2.TimeSeries) seriesView {
	v := seriesView{
		Labels:     renderLabels(req.Symbols, ts.LabelsRefs),
		Samples:    ts.Samples,
		Histograms: ts.Histograms,
		Metadata: fmt.Sprintf("%s help=%q unit=%q", ts.Metadata.Type,
			req.Symbols[ts.Metadata.HelpRef], req.Symbols[ts.Metadata.UnitRef]),
	}
	for _, e := range ts.Exemplars {
		v.Exemplars = append(v.Exemplars, fmt.Sprintf("%s %v@%d", renderLabels(req.Symbols, e.LabelsRefs), e.Value, e.Timestamp))
	}
	return v
}

// viewRequest renders every series of req, sorted for order-free comparison.
func viewRequest(req *writev2.Request) []seriesView {
	out := make([]seriesView, 0, len(req.Timeseries))
	for i := range req.Timeseries {
		out = append(out, viewSeries(req, &req.Timeseries[i]))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Labels < out[j].Labels })
	return out
}

// genV1 generates n series with `labels` labels each (including __name__),
// one sample each, spread over `metrics` metric names.
func genV1(n, labels, metrics int) *prompb.WriteRequest {
	req := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, n)}
	for i := range req.Timeseries {
		ls := make([]prompb.Label, 0, labels)
		ls = append(ls, prompb.Label{Name: "__name__", Value: fmt.Sprintf("metric_%d", i%metrics)})
		for j := 1; j < labels; j++ {
			ls = append(ls, prompb.Label{Name: fmt.Sprintf("label_%02d", j), Value: fmt.Sprintf("value_%d_%d", j, i)})
		}
		req.Timeseries[i] = prompb.TimeSeries{
			Labels:  ls,
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1_700_000_000_000 + int64(i)}},
		}
	}
	return req
}

// genV2 is genV1 in Remote Write 2.0 form.
func genV2(n, labels, metrics int) *writev2.Request {
	v1 := genV1(n, labels, metrics)
	req := convertV1(v1)
	return &req
}

func TestRenderLabels(t *testing.T) {
	symbols := []string{"", "__name__", "up", "job", "a\"b"}
	tests := []struct {
		name string
		refs []uint32
		want string
	}{
		{name: "empty", refs: nil, want: "{}"},
		{name: "normal", refs: []uint32{1, 2, 3, 4}, want: `{__name__="up", job="a\"b"}`},
		{name: "odd", refs: []uint32{1, 2, 3}, want: `{__name__="up", job=<missing value>}`},
		{name: "out of range", refs: []uint32{1, 99}, want: `{__name__=<ref 99 out of range>}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, renderLabels(symbols, tc.refs))
		})
	}
	long := renderLabels([]string{"", strings.Repeat("n", 2000), "v"}, []uint32{1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2})
	require.Less(t, len(long), 2*maxRenderedLabels)
}
