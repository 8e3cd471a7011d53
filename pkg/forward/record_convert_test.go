package forward

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// TestRecordEncodersMatchConverters holds the batch form's encoders to the
// generated-type converters: a 2.0 request turned into a batch and rendered
// as 1.0 is what ToV1 makes of it, rendered as 2.0 it is what
// attachMetadata makes of it (same family metadata left over).
func TestRecordEncodersMatchConverters(t *testing.T) {
	for name, b := range map[string]Batch{
		"every kind of series":    genBatch("t", 0, 16, 1000),
		"floats only":             floatBatch("t", 0, 5, 7),
		"metadata without series": {Tenant: "t", Metadata: familyMeta()},
	} {
		t.Run(name, func(t *testing.T) {
			batch := record.FromV2(nil, &b.Request)

			want1, err := ToV1(&b.Request, b.Metadata)
			require.NoError(t, err)
			var enc1 record.V1Encoder
			enc1.Reset(b.Metadata)
			it := record.NewIter(batch)
			for it.Next() {
				_, err := it.Entry().Validate()
				require.NoError(t, err)
				enc1.Add(it.Entry())
			}
			require.NoError(t, it.Err())
			require.Equal(t, len(want1.Metadata), enc1.Metadata())
			var got1 prompb.WriteRequest
			require.NoError(t, got1.Unmarshal(enc1.Bytes()))
			if len(want1.Timeseries) == 0 {
				want1.Timeseries = nil
			}
			require.Equal(t, *want1, got1)

			want2, wantLeft, err := attachMetadata(&b.Request, b.Metadata)
			require.NoError(t, err)
			got2, gotLeft, err := record.ToV2Request(batch, b.Metadata)
			require.NoError(t, err)
			require.Equal(t, wantLeft, gotLeft)
			s1, s2 := newStore(), newStore()
			s1.addV2(want2)
			s2.addV2(got2)
			require.Equal(t, s1, s2)
			require.Equal(t, countsOf(want2), countsOf(got2))
		})
	}
}

// TestRecordSplitsSamplesAndHistograms: a 1.0 series may carry both; 2.0
// needs two series.
func TestRecordSplitsSamplesAndHistograms(t *testing.T) {
	st := writev2.NewSymbolTable()
	req := writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(lbls("__name__", "both"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		Histograms: []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 1}, Timestamp: 1}},
	}}}
	req.Symbols = st.Symbols()
	got, _, err := record.ToV2Request(record.FromV2(nil, &req), nil)
	require.NoError(t, err)
	require.Len(t, got.Timeseries, 2)
	require.Len(t, got.Timeseries[0].Samples, 1)
	require.Empty(t, got.Timeseries[0].Histograms)
	require.Len(t, got.Timeseries[1].Histograms, 1)
	require.Empty(t, got.Timeseries[1].Samples)
}
