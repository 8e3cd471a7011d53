package aggregate

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// in is one input series of a test batch.
type in struct {
	typ     writev2.Metadata_MetricType
	ls      labels.Labels
	samples []writev2.Sample
	hists   []writev2.Histogram
}

// batchOf encodes inputs as record entries, with their metric names.
func batchOf(tb testing.TB, ins ...in) ([]byte, []string) {
	tb.Helper()
	var b []byte
	var names []string
	for _, x := range ins {
		st := writev2.NewSymbolTable()
		ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(x.ls, nil), Samples: x.samples, Histograms: x.hists, Metadata: writev2.Metadata{Type: x.typ}}
		b, _ = record.AppendV2(b, nil, x.ls, &ts, st.Symbols())
		names = append(names, x.ls.Get(model.MetricNameLabel))
	}
	it := record.NewIter(b)
	for it.Next() {
		_, err := it.Entry().Validate()
		require.NoError(tb, err)
	}
	require.NoError(tb, it.Err())
	return b, names
}

func counter(ls labels.Labels, t int64, v float64) in {
	return in{typ: writev2.Metadata_METRIC_TYPE_COUNTER, ls: ls, samples: []writev2.Sample{{Value: v, Timestamp: t}}}
}

func gauge(ls labels.Labels, t int64, v float64) in {
	return in{typ: writev2.Metadata_METRIC_TYPE_GAUGE, ls: ls, samples: []writev2.Sample{{Value: v, Timestamp: t}}}
}

func nativeHist(ls labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) in {
	x := in{typ: writev2.Metadata_METRIC_TYPE_HISTOGRAM, ls: ls}
	if h != nil {
		x.hists = []writev2.Histogram{writev2.FromIntHistogram(0, t, h)}
	} else {
		x.hists = []writev2.Histogram{writev2.FromFloatHistogram(0, t, fh)}
	}
	return x
}

// point is one output sample.
type point struct {
	T   int64
	V   float64
	H   *histogram.FloatHistogram
	Int bool // H was written as an integer histogram
}

// outputs decodes Close's outputs: series (labels string) → points.
func outputs(tb testing.TB, outs []Output) map[string][]point {
	tb.Helper()
	got := map[string][]point{}
	var p parsed
	for _, o := range outs {
		it := record.NewIter(o.Batch)
		for it.Next() {
			e := it.Entry()
			_, err := e.Validate()
			require.NoError(tb, err)
			require.True(tb, p.parse(e.Series))
			var sb labels.ScratchBuilder
			ls := record.Labels(e.Series, &sb)
			require.Equal(tb, ls.Hash(), e.Hash, "entry hash of %s", ls)
			key := o.Tenant + "/" + ls.String()
			for _, s := range p.samples {
				got[key] = append(got[key], point{T: s.t, V: s.v})
			}
			for _, hb := range p.hists {
				var ph prompb.Histogram
				require.NoError(tb, ph.Unmarshal(hb))
				got[key] = append(got[key], point{T: ph.Timestamp, H: ph.ToFloatHistogram(), Int: !ph.IsFloatHistogram()})
			}
		}
		require.NoError(tb, it.Err())
	}
	return got
}

func keys(m map[string][]point) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) at(ms int64) time.Time { c.t = time.UnixMilli(ms); return c.t }

func mustEngine(tb testing.TB, rules ...RuleConfig) *Engine {
	tb.Helper()
	e, err := New(Config{Rules: rules}, nil, nil)
	require.NoError(tb, err)
	require.NotNil(tb, e)
	return e
}

func pod(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{"__name__", name}, kv...)...)
}

func fmtPoints(ps []point) string {
	s := ""
	for _, p := range ps {
		s += fmt.Sprintf("%d=%g ", p.T, p.V)
	}
	return s
}
