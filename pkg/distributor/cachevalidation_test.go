package distributor

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/remotewrite"
)

// TestSeriesCacheKeepsValidation sends the same request three times, as a
// sender re-sends its series every scrape, to real gRPC ingesters: from the
// second time on its valid series are placed from the series cache. Every
// time, the unsorted series are written sorted and counted, and the invalid
// ones are refused with the same answer. The cache only replays what the
// full validator decided, and never remembers a refused series.
func TestSeriesCacheKeepsValidation(t *testing.T) {
	series := [][]string{
		{"__name__", "sorted_total", "job", "node"},
		{"__name__", "vm_style", "pod", "a", "instance", "i", "job", "node"}, // target labels appended: unsorted
		{"pod", "b", "__name__", "vm_style"},                                 // unsorted
		{"__name__", "bad_value", "a", "bad\xff"},                            // label value not UTF-8
		{"__name__", "dup", "b", "1", "a", "x", "b", "2"},                    // unsorted, duplicate once sorted
		{"__name__", ""},   // empty metric name
		{"job", "no_name"}, // no __name__
	}
	written := []string{
		"{__name__=sorted_total, job=node}",
		"{__name__=vm_style, instance=i, job=node, pod=a}",
		"{__name__=vm_style, pod=b}",
	}
	for _, proto := range []remotewrite.Protocol{remotewrite.ProtocolV1, remotewrite.ProtocolV2} {
		t.Run(proto.String(), func(t *testing.T) {
			tc := newTestCluster(t, 2, 5*time.Second)
			body := labelsOnlyBody(t, proto, series)
			var first string
			for round := range 3 {
				w := postAs(tc.dist, proto, body, "vmagent")

				require.Equal(t, http.StatusBadRequest, w.Code, "round %d", round)
				require.Contains(t, w.Body.String(), `4 invalid series rejected, first: series {__name__="bad_value", a="bad\xff"}: `)
				require.Contains(t, w.Body.String(), "the other 3 series in the request were written")
				if round == 0 {
					first = w.Body.String()
				}
				require.Equal(t, first, w.Body.String(), "round %d: the same answer", round)
				require.Equal(t, written, tc.takeSeries(), "round %d: the valid series, sorted", round)
				require.Equal(t, float64(2*(round+1)), testutil.ToFloat64(tc.dist.m.sortedSeries.WithLabelValues(proto.String(), "vmagent")),
					"round %d: the unsorted series are counted every time", round)
				require.Equal(t, float64(4*(round+1)), testutil.ToFloat64(tc.dist.m.invalidSeries), "round %d", round)
			}
			require.Equal(t, len(written), tc.dist.cache.gen.Load().entries(),
				"the valid series are cached (so later rounds were hits), the refused ones are not")
		})
	}
}

// entries counts the series g remembers.
func (g *cacheGen) entries() int {
	n := 0
	for i := range g.shards {
		sh := &g.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// postAs posts a snappy-compressed request of proto to h with the
// User-Agent of a sender.
func postAs(h http.Handler, proto remotewrite.Protocol, body []byte, userAgent string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(body))
	r.Header.Set("Content-Type", proto.ContentType())
	r.Header.Set("Content-Encoding", "snappy")
	r.Header.Set("User-Agent", userAgent)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// takeSeries returns the labels, in wire order, of every series the
// ingesters received since the last call, sorted.
func (tc *testCluster) takeSeries() []string {
	var out []string
	for _, rec := range tc.recorders {
		rec.mu.Lock()
		for _, b := range rec.batches {
			for i := range b.Request.Timeseries {
				out = append(out, renderRefs(&b.Request, &b.Request.Timeseries[i]))
			}
		}
		rec.batches = nil
		rec.mu.Unlock()
	}
	sort.Strings(out)
	return out
}

// labelsOnlyBody is a snappy-compressed request of proto with one series
// per label list (name/value pairs, in the order given), each with one
// float sample.
func labelsOnlyBody(t *testing.T, proto remotewrite.Protocol, series [][]string) []byte {
	t.Helper()
	return snappy.Encode(nil, rawBody(t, proto, series))
}

// rawBody is labelsOnlyBody before compression.
func rawBody(t testing.TB, proto remotewrite.Protocol, series [][]string) []byte {
	t.Helper()
	var (
		b   []byte
		err error
	)
	if proto == remotewrite.ProtocolV1 {
		req := &prompb.WriteRequest{}
		for _, kv := range series {
			ts := prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}}
			for i := 0; i+1 < len(kv); i += 2 {
				ts.Labels = append(ts.Labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		b, err = req.Marshal()
	} else {
		st := writev2.NewSymbolTable()
		req := writev2.Request{}
		for _, kv := range series {
			ts := writev2.TimeSeries{Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}}
			for _, s := range kv {
				ts.LabelsRefs = append(ts.LabelsRefs, st.Symbolize(s))
			}
			req.Timeseries = append(req.Timeseries, ts)
		}
		req.Symbols = st.Symbols()
		b, err = req.Marshal()
	}
	require.NoError(t, err)
	return b
}
