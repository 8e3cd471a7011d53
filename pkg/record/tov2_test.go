package record_test

import (
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

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
