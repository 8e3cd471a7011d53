package remotewrite

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func TestSeriesLabelsAndAddSeriesWithLabels(t *testing.T) {
	st := writev2.NewSymbolTable()
	src := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "legacy_hits", "path", "/users/42"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 2}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "abc"), nil), Value: 1, Timestamp: 2}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Hits."), UnitRef: st.Symbolize("requests")},
	}}}
	src.Symbols = st.Symbols()
	ts := &src.Timeseries[0]

	sb := labels.NewScratchBuilder(4)
	var ls labels.Labels
	SeriesLabels(&sb, src, ts, &ls)
	require.Equal(t, `{__name__="legacy_hits", path="/users/42"}`, ls.String())
	require.Zero(t, testing.AllocsPerRun(10, func() { SeriesLabels(&sb, src, ts, &ls) }))

	b := NewBuilder()
	b.AddSeriesWithLabels(src, ts, labels.FromStrings("__name__", "app_hits", "path", "/users/:id"))
	out := b.Request()
	require.NotContains(t, out.Symbols, "legacy_hits", "old label values must not enter the symbols")
	require.NotContains(t, out.Symbols, "/users/42")
	rejected, first, _ := validateRequest(&out, validationOpts{})
	require.Zero(t, rejected, first)
	got := viewRequest(&out)
	want := viewRequest(src)
	require.Len(t, got, 1)
	want[0].Labels = renderLabels(out.Symbols, out.Timeseries[0].LabelsRefs)
	require.Equal(t, `{__name__="app_hits", path="/users/:id"}`, want[0].Labels)
	require.Equal(t, want, got)
}
