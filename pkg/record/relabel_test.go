package record_test

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// FuzzAppendRelabeled: whatever the bytes, every valid entry re-encoded
// with other labels is a valid entry with those labels, their hash, the
// same counts and the same data.
func FuzzAppendRelabeled(f *testing.F) {
	f.Add(record.FromV2(nil, sampleRequest()))
	f.Add(record.AppendEntry(nil, &record.Entry{Series: record.AppendLabel(nil, "__name__", "x")}))
	f.Fuzz(func(t *testing.T, batch []byte) {
		var sb labels.ScratchBuilder
		var ls labels.Labels
		it := record.NewIter(batch)
		for it.Next() {
			e := it.Entry()
			if _, err := e.Validate(); err != nil {
				continue
			}
			record.LabelsInto(e.Series, &sb, &ls)
			want := labels.NewBuilder(ls).Set("relabelled", "yes").Labels()
			out := record.AppendRelabeled(nil, e, want)
			got := record.NewIter(out)
			require.True(t, got.Next(), "%v", got.Err())
			g := got.Entry()
			_, err := g.Validate()
			require.NoError(t, err)
			require.Equal(t, want, record.Labels(g.Series, &sb))
			require.Equal(t, want.Hash(), g.Hash)
			require.Equal(t, [4]int{int(e.Flags), e.Samples, e.Histograms, e.Exemplars}, [4]int{int(g.Flags), g.Samples, g.Histograms, g.Exemplars})
			require.Equal(t, len(e.Series)-record.LabelsSize(ls), len(g.Series)-record.LabelsSize(want), "the data is copied as is")
			require.False(t, got.Next())
		}
	})
}
