package retro

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readAnswer(t testing.TB, ts ...prompb.TimeSeries) []byte {
	resp := prompb.ReadResponse{Results: []*prompb.QueryResult{{}}}
	for i := range ts {
		resp.Results[0].Timeseries = append(resp.Results[0].Timeseries, &ts[i])
	}
	b, err := resp.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func TestParseReadResponse(t *testing.T) {
	got, err := parseReadResponse(readAnswer(t, prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "b", Value: "2"}, {Name: "__name__", Value: "m"}},
		Samples: []prompb.Sample{{Timestamp: 1, Value: 1.5}, {Timestamp: 2, Value: 2.5}},
	}))
	require.NoError(t, err)
	assert.Equal(t, []Series{{Labels: labels.FromStrings("__name__", "m", "b", "2"), Samples: []Sample{{1, 1.5}, {2, 2.5}}}}, got)

	// Native histograms are read, integer and float.
	got, err = parseReadResponse(readAnswer(t, prompb.TimeSeries{
		Labels:     []prompb.Label{{Name: "__name__", Value: "h"}},
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(1, testHistogram(0)), prompb.FromFloatHistogram(2, testHistogram(1).ToFloat(nil))},
	}))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Len(t, got[0].Histograms, 2)
	assert.True(t, got[0].Histograms[0].H != nil && got[0].Histograms[0].float().Equals(testHistogram(0).ToFloat(nil).Compact(0)))
	assert.True(t, got[0].Histograms[1].FH != nil && got[0].Histograms[1].float().Equals(testHistogram(1).ToFloat(nil).Compact(0)))

	_, err = parseReadResponse([]byte("not snappy"))
	assert.ErrorContains(t, err, "remote read: decode answer")
}

func TestParseExport(t *testing.T) {
	got, err := parseExport([]byte(`{"metric":{"__name__":"m","a":"1"},"values":[1,2.5],"timestamps":[1000,2000]}

{"metric":{"__name__":"n"},"values":[],"timestamps":[]}
`))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, Series{Labels: labels.FromStrings("__name__", "m", "a", "1"), Samples: []Sample{{1000, 1}, {2000, 2.5}}}, got[0])
	_, err = parseExport([]byte(`{"metric":{},"values":[1],"timestamps":[]}`))
	assert.ErrorContains(t, err, "1 values for 0 timestamps")
	_, err = parseExport([]byte(`{`))
	assert.ErrorContains(t, err, "export: decode line")
}

func FuzzParseReadResponse(f *testing.F) {
	f.Add(readAnswer(f, prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseReadResponse(b)
	})
}

func FuzzParseExport(f *testing.F) {
	f.Add([]byte(`{"metric":{"__name__":"m"},"values":[1],"timestamps":[1]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseExport(b)
	})
}

func TestExactSelector(t *testing.T) {
	ls := labels.FromStrings("__name__", "m", "a", `x"y`)
	assert.Equal(t, `{__name__="m",a="x\"y",b=""}`, exactSelector(ls, []string{"__name__", "a", "b"}))
	assert.Equal(t, `{__name__="m","a.b"="1"}`, exactSelector(labels.FromStrings("__name__", "m", "a.b", "1"), nil))
}
