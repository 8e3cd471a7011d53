package record_test

import (
	"bytes"
	"math"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

// TestV2EncoderSymbols: whatever the label sets and their order, the
// request V2Encoder renders is the one Prometheus' own symbol table builds
// from the same series (same symbols in the same order, same references),
// across Resets of one encoder, as its symbol index grows and shrinks.
func TestV2EncoderSymbols(t *testing.T) {
	series := func(n int, ls func(i int) labels.Labels) []labels.Labels {
		out := make([]labels.Labels, n)
		for i := range out {
			out[i] = ls(i)
		}
		return out
	}
	cases := []struct {
		name   string
		series []labels.Labels
	}{
		{"one series", series(1, func(int) labels.Labels { return labels.FromStrings("__name__", "up") })},
		{"label counts change", series(40, func(i int) labels.Labels {
			switch i % 3 {
			case 0:
				return labels.FromStrings("__name__", "a", "job", "j")
			case 1:
				return labels.FromStrings("__name__", "a", "instance", "x", "job", "j", "zone", strconv.Itoa(i))
			}
			return labels.FromStrings("__name__", "b", "job", "j", "zone", strconv.Itoa(i))
		})},
		{"one value under two names", series(20, func(i int) labels.Labels {
			if i%2 == 0 {
				return labels.FromStrings("__name__", "m", "a", "x")
			}
			return labels.FromStrings("__name__", "m", "b", "x")
		})},
		{"empty value", series(4, func(i int) labels.Labels {
			return labels.FromStrings("__name__", "m", "e", "", "id", strconv.Itoa(i))
		})},
		{"many symbols (the index grows)", series(5000, func(i int) labels.Labels {
			return labels.FromStrings("__name__", "m"+strconv.Itoa(i%700), "id", strconv.Itoa(i), "pod", "p-"+strconv.Itoa(i/7))
		})},
		{"few after many (the index is kept, cleared)", series(3, func(i int) labels.Labels {
			return labels.FromStrings("__name__", "m", "id", strconv.Itoa(i))
		})},
		{"few once more (the index shrinks to its minimum)", series(3, func(i int) labels.Labels {
			return labels.FromStrings("__name__", "n", "id", strconv.Itoa(i))
		})},
	}
	// In order, on one encoder: each case's Reset sizes the index by the
	// case before it.
	var enc record.V2Encoder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := writev2.NewSymbolTable()
			want := &writev2.Request{}
			for i, ls := range tc.series {
				want.Timeseries = append(want.Timeseries, writev2.TimeSeries{
					LabelsRefs: st.SymbolizeLabels(ls, nil),
					Samples:    []writev2.Sample{{Value: float64(i), Timestamp: int64(i)}},
				})
			}
			want.Symbols = st.Symbols()
			batch := record.FromV2(nil, want)

			enc.Reset(nil)
			for it := record.NewIter(batch); it.Next(); {
				enc.Add(it.Entry())
			}
			var got writev2.Request
			require.NoError(t, got.Unmarshal(enc.Bytes()))
			require.Equal(t, want.Symbols, got.Symbols)
			require.Len(t, got.Timeseries, len(want.Timeseries))
			for i := range want.Timeseries {
				require.Equal(t, want.Timeseries[i].LabelsRefs, got.Timeseries[i].LabelsRefs, "series %d", i)
				require.Equal(t, want.Timeseries[i].Samples, got.Timeseries[i].Samples, "series %d", i)
			}
		})
	}
}

// TestV2EncoderLayouts: a series whose fields come in another order than
// labels then samples (which the distributor's builder writes, and
// V2Encoder copies in one piece) is encoded to the same TimeSeries.
func TestV2EncoderLayouts(t *testing.T) {
	sample := func(v float64, ts int64) []byte { // a series' samples field
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.Fixed64Type)
		m = protowire.AppendFixed64(m, math.Float64bits(v))
		m = protowire.AppendTag(m, 2, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(ts))
		return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), m)
	}
	name, job := record.AppendLabel(nil, "__name__", "up"), record.AppendLabel(nil, "job", "j")
	s1, s2 := sample(1, 1000), sample(2, 2000)
	want := writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}}
	for _, tc := range []struct {
		name   string
		fields [][]byte
	}{
		{"labels then samples", [][]byte{name, job, s1, s2}},
		{"samples then labels", [][]byte{s1, s2, name, job}},
		{"samples between labels", [][]byte{name, s1, job, s2}},
		{"labels between samples", [][]byte{s1, name, job, s2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			series := bytes.Join(tc.fields, nil)
			batch := record.AppendHeader(nil, 1, 0, 2, 0, 0, len(series))
			batch = append(batch, series...)
			var enc record.V2Encoder
			enc.Reset(nil)
			for it := record.NewIter(batch); it.Next(); {
				enc.Add(it.Entry())
			}
			var got writev2.Request
			require.NoError(t, got.Unmarshal(enc.Bytes()))
			require.Equal(t, []string{"", "__name__", "up", "job", "j"}, got.Symbols)
			require.Len(t, got.Timeseries, 1)
			require.Equal(t, want.LabelsRefs, got.Timeseries[0].LabelsRefs)
			require.Equal(t, want.Samples, got.Timeseries[0].Samples)
		})
	}
}
