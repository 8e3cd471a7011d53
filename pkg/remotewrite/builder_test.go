package remotewrite

import (
	"sort"
	"testing"

	"github.com/cespare/xxhash/v2"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// splitFixture returns a V2 request with every field a Builder re-symbolizes:
// labels, exemplar labels and metadata help/unit.
func splitFixture() *writev2.Request {
	v1, _ := v1Fixture()
	req := convertV1(v1)
	st := writev2.NewSymbolTable()
	for _, s := range req.Symbols {
		st.Symbolize(s)
	}
	req.Timeseries[0].Metadata = writev2.Metadata{
		Type:    writev2.Metadata_METRIC_TYPE_HISTOGRAM,
		HelpRef: st.Symbolize("Custom buckets."),
		UnitRef: st.Symbolize("seconds"),
	}
	req.Timeseries[1].Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests.")}
	req.Symbols = st.Symbols()
	more := genV2(30, 5, 7)
	// Merge the generated series in through a Builder seeded with req.
	merged := NewBuilder()
	for i := range req.Timeseries {
		merged.AddSeries(&req, &req.Timeseries[i])
	}
	for i := range more.Timeseries {
		merged.AddSeries(more, &more.Timeseries[i])
	}
	out := merged.Request()
	return &out
}

func split(req *writev2.Request, builders []*Builder) {
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		owner := xxhash.Sum64String(MetricName(req, ts)) % uint64(len(builders))
		builders[owner].AddSeries(req, ts)
	}
}

func TestBuilderSplitPreservesEverything(t *testing.T) {
	src := splitFixture()
	rejected, first, _ := validateRequest(src, validationOpts{})
	require.Zero(t, rejected, first)
	want := viewRequest(src)

	builders := []*Builder{NewBuilder(), NewBuilder(), NewBuilder()}
	for round := range 2 { // the second round checks Reset leaves nothing behind
		split(src, builders)
		var got []seriesView
		total := 0
		for owner, b := range builders {
			part := b.Request()
			require.Equal(t, "", part.Symbols[0], "owner %d", owner)
			require.Equal(t, b.Len(), len(part.Timeseries))
			total += b.Len()

			// Each part is a self-contained valid request on the wire.
			var wire writev2.Request
			require.NoError(t, wire.Unmarshal(marshalV2(t, &part)))
			r, msg, _ := validateRequest(&wire, validationOpts{})
			require.Zero(t, r, msg)
			got = append(got, viewRequest(&wire)...)

			// Symbols are deduplicated and only what the part uses.
			seen := map[string]bool{}
			for _, s := range part.Symbols {
				require.False(t, seen[s], "duplicate symbol %q", s)
				seen[s] = true
			}
			require.LessOrEqual(t, len(part.Symbols), len(src.Symbols))

			// Every series of one metric goes to one owner.
			for i := range part.Timeseries {
				name := MetricName(&part, &part.Timeseries[i])
				require.Equal(t, uint64(owner), xxhash.Sum64String(name)%3)
			}
		}
		require.Equal(t, len(src.Timeseries), total, "round %d", round)
		sort.SliceStable(got, func(i, j int) bool { return got[i].Labels < got[j].Labels })
		require.Equal(t, want, got, "round %d", round)
		for _, b := range builders {
			b.Reset()
			require.Zero(t, b.Len())
			require.Equal(t, []string{""}, b.Request().Symbols)
		}
	}
}

func TestMetricName(t *testing.T) {
	symbols := []string{"", "__name__", "up", "a", "b"}
	req := &writev2.Request{Symbols: symbols}
	tests := map[string]struct {
		refs []uint32
		want string
	}{
		"first":        {refs: []uint32{1, 2, 3, 4}, want: "up"},
		"later":        {refs: []uint32{3, 4, 1, 2}, want: "up"},
		"absent":       {refs: []uint32{3, 4}, want: ""},
		"none":         {refs: nil, want: ""},
		"out of range": {refs: []uint32{9, 9, 1, 2}, want: "up"},
		"odd":          {refs: []uint32{3, 4, 1}, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ts := &writev2.TimeSeries{LabelsRefs: tc.refs}
			require.Equal(t, tc.want, MetricName(req, ts))
		})
	}
	ts := &writev2.TimeSeries{LabelsRefs: []uint32{3, 4, 1, 2}}
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = MetricName(req, ts) }))
}

func TestCounts(t *testing.T) {
	tests := map[string]struct {
		req                   *writev2.Request
		samples, hists, exems int
	}{
		"empty":     {req: &writev2.Request{}},
		"generated": {req: genV2(7, 3, 2), samples: 7},
		"mixed": {req: &writev2.Request{Timeseries: []writev2.TimeSeries{
			{Samples: make([]writev2.Sample, 2), Exemplars: make([]writev2.Exemplar, 1)},
			{Histograms: make([]writev2.Histogram, 3), Exemplars: make([]writev2.Exemplar, 2)},
		}}, samples: 2, hists: 3, exems: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, h, e := Counts(tc.req)
			require.Equal(t, []int{tc.samples, tc.hists, tc.exems}, []int{s, h, e})
		})
	}
}

func TestBuilderAlternatingSources(t *testing.T) {
	a := &writev2.Request{Symbols: []string{"", "__name__", "a_metric", "job", "x"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 1}}}}}
	// b uses the same refs for different strings, so a stale cache would show.
	b := &writev2.Request{Symbols: []string{"", "__name__", "b_metric", "job", "y"},
		Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 2}}}}}
	bl := NewBuilder()
	bl.AddSeries(a, &a.Timeseries[0])
	bl.AddSeries(b, &b.Timeseries[0])
	bl.AddSeries(a, &a.Timeseries[0])
	got := bl.Request()
	require.Equal(t, []string{
		`{__name__="a_metric", job="x"}`,
		`{__name__="b_metric", job="y"}`,
		`{__name__="a_metric", job="x"}`,
	}, []string{
		renderLabels(got.Symbols, got.Timeseries[0].LabelsRefs),
		renderLabels(got.Symbols, got.Timeseries[1].LabelsRefs),
		renderLabels(got.Symbols, got.Timeseries[2].LabelsRefs),
	})
	require.Equal(t, []string{"", "__name__", "a_metric", "job", "x", "b_metric", "y"}, got.Symbols)
}
