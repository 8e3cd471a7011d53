package integration

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outcome is what a receiver did with a one-series request: its status
// code, and whether the series can be found in storage afterwards.
type outcome struct {
	code   int
	stored bool
}

func (o outcome) String() string {
	if o.stored {
		return fmt.Sprintf("%d, stored", o.code)
	}
	return fmt.Sprintf("%d, not stored", o.code)
}

// edgeCase is one series of docs/validation.md sent as a request of its own
// to Prometheus 3.16 (RW 1.0 and 2.0), to VictoriaMetrics (RW 1.0) and
// through promgov (RW 1.0 and 2.0) to Prometheus.
type edgeCase struct {
	name   string
	series prompb.TimeSeries // labels in the order sent; "case" is added
	// want are the expected outcomes: Prometheus RW 1.0, Prometheus RW 2.0,
	// VictoriaMetrics RW 1.0, promgov RW 1.0, promgov RW 2.0.
	want [5]outcome
}

var (
	accepted = outcome{204, true}
	dropped  = outcome{204, false} // acknowledged, never stored
	refused  = outcome{400, false}
)

func edgeCases(now int64) []edgeCase {
	sample := []prompb.Sample{{Value: 1, Timestamp: now}}
	ls := func(kv ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	hist := func(edit func(h *prompb.Histogram)) []prompb.Histogram {
		h := prompb.Histogram{
			Count: &prompb.Histogram_CountInt{CountInt: 7}, Sum: 12.5, Schema: 0, ZeroThreshold: 0.001,
			ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
			PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
			PositiveDeltas: []int64{2, 1, -2},
			Timestamp:      now,
		}
		if edit != nil {
			edit(&h)
		}
		return []prompb.Histogram{h}
	}
	exemplar := func(kv ...string) []prompb.Exemplar {
		return []prompb.Exemplar{{Labels: ls(kv...), Value: 1, Timestamp: now}}
	}
	return []edgeCase{
		{name: "valid", series: prompb.TimeSeries{Labels: ls("__name__", "edge_valid"), Samples: sample},
			want: [5]outcome{accepted, accepted, accepted, accepted, accepted}},
		{name: "unsorted", series: prompb.TimeSeries{Labels: ls("__name__", "edge_unsorted", "z", "1", "a", "2"), Samples: sample},
			want: [5]outcome{accepted, accepted, accepted, accepted, accepted}},
		{name: "duplicate", series: prompb.TimeSeries{Labels: ls("__name__", "edge_dup", "a", "1", "a", "2"), Samples: sample},
			want: [5]outcome{dropped, refused, accepted, refused, refused}},
		{name: "name_not_utf8", series: prompb.TimeSeries{Labels: ls("__name__", "edge_bad_name", "bad-name\xff", "1"), Samples: sample},
			want: [5]outcome{dropped, refused, accepted, refused, refused}},
		{name: "value_not_utf8", series: prompb.TimeSeries{Labels: ls("__name__", "edge_bad_value", "a", "\xff"), Samples: sample},
			want: [5]outcome{dropped, refused, accepted, refused, refused}},
		{name: "no_metric_name", series: prompb.TimeSeries{Labels: ls("job", "x"), Samples: sample},
			want: [5]outcome{dropped, refused, accepted, refused, refused}},
		{name: "empty_metric_name", series: prompb.TimeSeries{Labels: ls("__name__", ""), Samples: sample},
			want: [5]outcome{dropped, refused, accepted, refused, refused}},
		{name: "empty_label_name", series: prompb.TimeSeries{Labels: ls("__name__", "edge_empty_name", "", "v"), Samples: sample},
			want: [5]outcome{dropped, refused, accepted, refused, refused}},
		{name: "empty_label_value", series: prompb.TimeSeries{Labels: ls("__name__", "edge_empty_value", "a", ""), Samples: sample},
			want: [5]outcome{accepted, accepted, accepted, accepted, accepted}},
		{name: "no_data", series: prompb.TimeSeries{Labels: ls("__name__", "edge_no_data")},
			want: [5]outcome{dropped, refused, dropped, refused, refused}},
		{name: "exemplar_only", series: prompb.TimeSeries{Labels: ls("__name__", "edge_exemplar_only"), Exemplars: exemplar("trace_id", "1")},
			want: [5]outcome{dropped, refused, dropped, refused, refused}},
		{name: "samples_and_histograms", series: prompb.TimeSeries{Labels: ls("__name__", "edge_mixed"), Samples: sample, Histograms: hist(func(h *prompb.Histogram) { h.Timestamp = now + 1 })},
			want: [5]outcome{accepted, accepted, refused, accepted, accepted}},
		{name: "histogram_count_mismatch", series: prompb.TimeSeries{Labels: ls("__name__", "edge_hist_count"), Histograms: hist(func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 9} })},
			want: [5]outcome{refused, refused, accepted, refused, refused}},
		{name: "histogram_spans_buckets", series: prompb.TimeSeries{Labels: ls("__name__", "edge_hist_spans"), Histograms: hist(func(h *prompb.Histogram) { h.PositiveSpans[1].Length = 2 })},
			want: [5]outcome{refused, refused, accepted, refused, refused}},
		{name: "histogram_schema_9", series: prompb.TimeSeries{Labels: ls("__name__", "edge_hist_schema9"), Histograms: hist(func(h *prompb.Histogram) { h.Schema = 9 })},
			want: [5]outcome{accepted, accepted, accepted, accepted, accepted}},
		{name: "histogram_schema_53", series: prompb.TimeSeries{Labels: ls("__name__", "edge_hist_schema53"), Histograms: hist(func(h *prompb.Histogram) { h.Schema = 53 })},
			want: [5]outcome{refused, refused, accepted, refused, refused}},
		{name: "custom_buckets_without_bounds", series: prompb.TimeSeries{Labels: ls("__name__", "edge_nhcb"), Histograms: hist(func(h *prompb.Histogram) {
			h.Schema, h.ZeroThreshold, h.ZeroCount, h.Count = -53, 0, nil, &prompb.Histogram_CountInt{CountInt: 6}
		})},
			want: [5]outcome{refused, refused, accepted, refused, refused}},
		{name: "exemplar_valid", series: prompb.TimeSeries{Labels: ls("__name__", "edge_exemplar_valid"), Samples: sample, Exemplars: exemplar("trace_id", "4bf92f3577b34da6")},
			want: [5]outcome{accepted, accepted, accepted, accepted, accepted}},
		{name: "exemplar_129_runes", series: prompb.TimeSeries{Labels: ls("__name__", "edge_exemplar_long"), Samples: sample, Exemplars: exemplar("trace_id", strings.Repeat("x", 121))},
			want: [5]outcome{accepted, accepted, accepted, refused, refused}},
	}
}

// encodeEdgeV1 renders one series as a snappy RW 1.0 request.
func encodeEdgeV1(t *testing.T, ts prompb.TimeSeries) []byte {
	t.Helper()
	b, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// encodeEdgeV2 renders one series as a snappy RW 2.0 request, labels in the
// order given.
func encodeEdgeV2(t *testing.T, ts prompb.TimeSeries) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	refs := func(ls []prompb.Label) []uint32 {
		var out []uint32
		for _, l := range ls {
			out = append(out, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		return out
	}
	out := writev2.TimeSeries{LabelsRefs: refs(ts.Labels)}
	for _, s := range ts.Samples {
		out.Samples = append(out.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp})
	}
	for _, e := range ts.Exemplars {
		out.Exemplars = append(out.Exemplars, writev2.Exemplar{LabelsRefs: refs(e.Labels), Value: e.Value, Timestamp: e.Timestamp})
	}
	for _, h := range ts.Histograms {
		v2 := writev2.Histogram{
			Sum: h.Sum, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold, Timestamp: h.Timestamp,
			PositiveDeltas: h.PositiveDeltas, NegativeDeltas: h.NegativeDeltas, CustomValues: h.CustomValues,
			Count: &writev2.Histogram_CountInt{CountInt: h.GetCountInt()},
		}
		if h.ZeroCount != nil {
			v2.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: h.GetZeroCountInt()}
		}
		for _, s := range h.PositiveSpans {
			v2.PositiveSpans = append(v2.PositiveSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
		}
		out.Histograms = append(out.Histograms, v2)
	}
	req := writev2.Request{Timeseries: []writev2.TimeSeries{out}}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// TestEdgeAgreesWithBackends sends each rule's series of
// docs/validation.md on its own to the real receivers and through promgov,
// and checks the table: what Prometheus 3.16 and VictoriaMetrics v1.151.0
// answer and store, what promgov answers, and that whatever promgov
// acknowledges the backend stores.
func TestEdgeAgreesWithBackends(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 2)
	vm := startVictoriaMetrics(t)
	now := time.Now().UnixMilli()
	paths := []struct {
		name        string
		url         string
		contentType string
		store       *backend
	}{
		{"prometheus-rw1", c.backend.writeURL(), contentTypeV1, c.backend},
		{"prometheus-rw2", c.backend.writeURL(), contentTypeV2, c.backend},
		{"victoriametrics-rw1", vm.writeURL(), contentTypeV1, vm},
		{"promgov-rw1", c.writeURL(), contentTypeV1, c.backend},
		{"promgov-rw2", c.writeURL(), contentTypeV2, c.backend},
	}
	cases := edgeCases(now)
	got := make([][5]outcome, len(cases))
	bodies := make([][5]string, len(cases))
	for i, tc := range cases {
		for p, path := range paths {
			ts := tc.series
			ts.Labels = append(append([]prompb.Label(nil), ts.Labels...), prompb.Label{Name: "case", Value: tc.name + "/" + path.name})
			body := encodeEdgeV1(t, ts)
			if path.contentType == contentTypeV2 {
				body = encodeEdgeV2(t, ts)
			}
			code, _, msg := postRW(t, path.url, path.contentType, body, nil)
			got[i][p].code, bodies[i][p] = code, msg
		}
	}
	// Wait for what should be stored, then look once more at everything.
	stored := func(t T, i, p int) bool {
		sel := fmt.Sprintf(`{case=%q}`, cases[i].name+"/"+paths[p].name)
		return len(paths[p].store.storedSeries(t, sel)) > 0
	}
	eventually(t, func(ct *assert.CollectT) bool {
		for i, tc := range cases {
			for p := range paths {
				if tc.want[p].stored && !stored(ct, i, p) {
					return false
				}
			}
		}
		return true
	}, 60*time.Second, time.Second, "series expected in storage never arrived")
	for i := range cases {
		for p := range paths {
			got[i][p].stored = stored(t, i, p)
		}
	}

	var table strings.Builder
	fmt.Fprintf(&table, "%-30s", "case")
	for _, p := range paths {
		fmt.Fprintf(&table, " | %-20s", p.name)
	}
	for i, tc := range cases {
		fmt.Fprintf(&table, "\n%-30s", tc.name)
		for p := range paths {
			fmt.Fprintf(&table, " | %-20s", got[i][p])
		}
	}
	t.Logf("outcomes (status, stored):\n%s", table.String())

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for p, path := range paths {
				require.Equal(t, tc.want[p], got[i][p], "%s: %s", path.name, bodies[i][p])
			}
			// An acknowledged series is one the backend stores; a refusal
			// names the series and says why.
			for _, p := range []int{3, 4} {
				if got[i][p].code/100 == 2 {
					require.True(t, got[i][p].stored, "%s acknowledged %s but the backend does not have it", paths[p].name, tc.name)
				} else {
					require.Contains(t, bodies[i][p], `case="`+tc.name+"/"+paths[p].name+`"`)
				}
			}
		})
	}
	exemplarsStored(t, c.backend, now)
}

// exemplarsStored checks which exemplars Prometheus kept: a valid one,
// whichever way it came, and not one whose labels are over 128 runes, of
// which it keeps the series' samples only.
func exemplarsStored(t *testing.T, b *backend, now int64) {
	t.Helper()
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []any             `json:"exemplars"`
	}
	var with []string
	eventually(t, func(ct *assert.CollectT) bool {
		apiGet(ct, "http://"+b.addr, "/api/v1/query_exemplars", url.Values{
			"query": {`{__name__=~"edge_.+"}`},
			"start": {fmt.Sprint(math.Floor(float64(now)/1000) - 60)},
			"end":   {fmt.Sprint(math.Ceil(float64(now)/1000) + 60)},
		}, &data)
		with = with[:0]
		for _, s := range data {
			if len(s.Exemplars) > 0 {
				with = append(with, s.SeriesLabels["case"])
			}
		}
		sort.Strings(with)
		return len(with) >= 4
	}, 30*time.Second, time.Second, "exemplars stored: %v", lazy(func() any { return with }))
	t.Logf("series whose exemplars Prometheus stored: %v", with)
	require.Equal(t, []string{"exemplar_valid/prometheus-rw1", "exemplar_valid/prometheus-rw2", "exemplar_valid/promgov-rw1", "exemplar_valid/promgov-rw2"}, with)
}
