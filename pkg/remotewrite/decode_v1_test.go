package remotewrite

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// resolved is a 2.0 series with its symbol references resolved, so two
// requests with different symbol orders compare equal.
type resolved struct {
	Labels     []string
	Samples    []resolvedSample
	Histograms [][]byte // marshalled, so NaN sums compare equal
	Exemplars  []resolvedExemplar
}

type resolvedSample struct {
	Value                     uint64 // bits, so NaN compares equal to itself
	Timestamp, StartTimestamp int64
}

type resolvedExemplar struct {
	Labels    []string
	Value     uint64 // bits, so NaN compares equal to itself
	Timestamp int64
}

func resolve(t *testing.T, req writev2.Request) []resolved {
	t.Helper()
	str := func(refs []uint32) []string {
		var out []string
		for _, r := range refs {
			require.Less(t, int(r), len(req.Symbols))
			out = append(out, req.Symbols[r])
		}
		return out
	}
	if len(req.Symbols) > 0 {
		require.Equal(t, "", req.Symbols[0])
	}
	var out []resolved
	for _, ts := range req.Timeseries {
		r := resolved{Labels: str(ts.LabelsRefs)}
		for _, s := range ts.Samples {
			r.Samples = append(r.Samples, resolvedSample{math.Float64bits(s.Value), s.Timestamp, s.StartTimestamp})
		}
		for _, h := range ts.Histograms {
			b, err := h.Marshal()
			require.NoError(t, err)
			r.Histograms = append(r.Histograms, b)
		}
		for _, e := range ts.Exemplars {
			r.Exemplars = append(r.Exemplars, resolvedExemplar{Labels: str(e.LabelsRefs), Value: math.Float64bits(e.Value), Timestamp: e.Timestamp})
		}
		out = append(out, r)
	}
	return out
}

// checkAgainstReference holds decodeV1 to gogo's Unmarshal + convertV1:
// whatever decodeV1 accepts, the generated decoder accepts too and the two
// agree; whatever the generated decoder accepts, decodeV1 accepts too unless
// the payload breaks the wire format itself (a WireError: gogo tolerates some
// malformed unknown fields that the protobuf encoding forbids).
func checkAgainstReference(t *testing.T, data []byte) {
	t.Helper()
	var ref prompb.WriteRequest
	refErr := ref.Unmarshal(data)
	got, meta, _, err := decodeV1(data, nil)
	if refErr != nil {
		require.Error(t, err, "the generated decoder fails (%v) but decodeV1 accepts", refErr)
		return
	}
	if err != nil {
		var we *WireError
		require.ErrorAs(t, err, &we, "the generated decoder accepts but decodeV1 fails for a reason other than the wire format")
		return
	}
	require.Equal(t, resolve(t, convertV1(&ref)), resolve(t, got))
	require.Equal(t, len(ref.Metadata), len(meta))
	for i := range meta {
		require.Equal(t, ref.Metadata[i].Type, meta[i].Type)
		require.Equal(t, ref.Metadata[i].MetricFamilyName, meta[i].MetricFamilyName)
		require.Equal(t, ref.Metadata[i].Help, meta[i].Help)
		require.Equal(t, ref.Metadata[i].Unit, meta[i].Unit)
	}
}

func v1Corpus(t testing.TB) [][]byte {
	h := &histogram.Histogram{
		Schema: 1, ZeroThreshold: 0.01, ZeroCount: 1, Count: 4, Sum: 2,
		PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 1},
	}
	reqs := []*prompb.WriteRequest{
		{},
		{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: math.NaN(), Timestamp: 2}, {Value: math.Inf(-1), Timestamp: 3}},
			Exemplars: []prompb.Exemplar{{
				Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 0.5, Timestamp: 1,
			}},
		}, {
			Labels:     []prompb.Label{{Name: "__name__", Value: "lat"}, {Name: "job", Value: "a"}},
			Samples:    []prompb.Sample{{Value: 2, Timestamp: 5}},
			Histograms: []prompb.Histogram{prompb.FromIntHistogram(5, h), prompb.FromFloatHistogram(6, h.ToFloat(nil))},
		}, {
			Labels: []prompb.Label{{Name: "", Value: ""}, {Name: "b", Value: "2"}, {Name: "a", Value: "1"}},
		}},
			Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "up", Help: "h", Unit: "u"}},
		},
	}
	var out [][]byte
	for _, r := range reqs {
		b, err := r.Marshal()
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func TestDecodeV1MatchesReference(t *testing.T) {
	for _, b := range v1Corpus(t) {
		checkAgainstReference(t, b)
		for cut := range b { // every truncation fails or decodes the same way
			checkAgainstReference(t, b[:cut])
		}
	}
	for name, b := range map[string][]byte{
		"field number 0":       {0x00},
		"stray end group":      {0x0c},
		"mismatched group end": []byte("C$"),
		"wrong wire type":      {0x08, 0x01},
		"unknown varint field": {0x10, 0x01},
		"unknown group":        {0x13, 0x08, 0x01, 0x14},
		"huge length":          {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"sample as varint":     {0x0a, 0x02, 0x10, 0x01},
		"label wrong type":     {0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01},
	} {
		t.Run(name, func(t *testing.T) { checkAgainstReference(t, b) })
	}
}

func FuzzDecodeV1MatchesReference(f *testing.F) {
	for _, b := range v1Corpus(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAgainstReference(t, data)
	})
}
