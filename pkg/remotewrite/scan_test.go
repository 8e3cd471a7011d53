package remotewrite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

func TestScan(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	v1 := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "b", Value: "2"}, {Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 5}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "ex"}}, Samples: []prompb.Sample{{Value: 1}},
			Exemplars: []prompb.Exemplar{{Value: 1}}},
	}, Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up"}}}
	p1, err := v1.Marshal()
	require.NoError(t, err)
	var sc Scanner
	var got []string
	require.True(t, sc.Scan(d, ProtocolV1, p1, func(s *ScannedSeries) {
		if !s.Simple {
			got = append(got, "decoder")
			return
		}
		var names []string
		record.ForEachLabel(s.Key, func(n, v []byte) { names = append(names, string(n)+"="+string(v)) })
		got = append(got, names[0]+","+names[1])
		require.Len(t, s.Samples, 1)
	}))
	require.Equal(t, []string{"b=2,__name__=up", "decoder"}, got, "1.0 keys keep the order sent")
	require.True(t, sc.HasMetadata())
	require.True(t, HasMetadataV1(p1))

	st := writev2.NewSymbolTable()
	v2 := writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "x", "a", "1"), nil),
			Samples:  []writev2.Sample{{Value: 1, Timestamp: 1, StartTimestamp: 1}},
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, UnitRef: st.Symbolize("bytes")}},
		{LabelsRefs: []uint32{1, 200}, Samples: []writev2.Sample{{Value: 1}}},
	}}
	v2.Symbols = st.Symbols()
	p2, err := v2.Marshal()
	require.NoError(t, err)
	var simple []bool
	require.True(t, sc.Scan(d, ProtocolV2, p2, func(s *ScannedSeries) {
		simple = append(simple, s.Simple)
		if s.Simple {
			require.True(t, s.StartTimestamps)
			require.Equal(t, "bytes", string(s.Meta.Unit))
			require.Equal(t, []byte("x"), record.MetricName(s.Key))
		}
	}))
	require.Equal(t, []bool{true, false}, simple, "a reference out of range is the decoder's to name")

	bad := append([]byte{}, p2...)
	bad[len(bad)-1] = 0xff
	require.False(t, sc.Scan(d, ProtocolV2, bad[:len(bad)-3], func(*ScannedSeries) {}), "truncated")
	nonEmpty, err := (&writev2.Request{Symbols: []string{"x"}}).Marshal()
	require.NoError(t, err)
	require.False(t, sc.Scan(d, ProtocolV2, nonEmpty, func(*ScannedSeries) {}), "symbols[0] must be empty")
}

// FuzzScan: any payload, either protocol, never panics the scanner.
func FuzzScan(f *testing.F) {
	f.Add(true, []byte{0x0a, 0x02, 0x0a, 0x00})
	f.Add(false, []byte{0x22, 0x00, 0x2a, 0x04, 0x0a, 0x02, 0x01, 0x02})
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	f.Fuzz(func(t *testing.T, v1 bool, payload []byte) {
		proto := ProtocolV2
		if v1 {
			proto = ProtocolV1
		}
		var sc Scanner
		sc.Scan(d, proto, payload, func(s *ScannedSeries) {
			if s.Simple && len(s.Samples) == 0 {
				t.Fatal("a simple series has samples")
			}
		})
		_ = sc.SubRequest(nil, proto, nil)
	})
}

// TestScanLeavesOverLimitToDecoder: the fast path never takes a series
// over a size limit (the decoder refuses it with the 400 naming the limit)
// and gives up on a request over the series limit, on both protocols.
func TestScanLeavesOverLimitToDecoder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSeriesPerRequest = 2
	d := NewDecoder(cfg, testFlagPrefix)
	manyLabels := []string{"__name__", "wide"}
	for i := range DefaultMaxLabelNamesPerSeries {
		manyLabels = append(manyLabels, fmt.Sprintf("l%02d", i), "v")
	}
	// Past the scanner's own bound for one label (name + value limits):
	// a value over the value limit but under that bound may be read by the
	// fast path, which serves only series the decoder already accepted from
	// the cache (pkg/distributor's TestSeriesCacheChangesNothing).
	long := labels.FromStrings("__name__", "long", "a", strings.Repeat("v", DefaultMaxLabelNameLength+DefaultMaxLabelValueLength+16))
	wide := labels.FromStrings(manyLabels...)
	ok := labels.FromStrings("__name__", "ok")

	v1 := func(ls ...labels.Labels) []byte {
		var req prompb.WriteRequest
		for _, l := range ls {
			ts := prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
			l.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
			req.Timeseries = append(req.Timeseries, ts)
		}
		p, err := req.Marshal()
		require.NoError(t, err)
		return p
	}
	v2 := func(ls ...labels.Labels) []byte {
		st := writev2.NewSymbolTable()
		var req writev2.Request
		for _, l := range ls {
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(l, nil),
				Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}})
		}
		req.Symbols = st.Symbols()
		p, err := req.Marshal()
		require.NoError(t, err)
		return p
	}
	for name, tc := range map[string]struct {
		proto  Protocol
		encode func(...labels.Labels) []byte
		big    labels.Labels
	}{
		"1.0 long value":  {ProtocolV1, v1, long},
		"1.0 many labels": {ProtocolV1, v1, wide},
		"2.0 long value":  {ProtocolV2, v2, long},
		"2.0 many labels": {ProtocolV2, v2, wide},
	} {
		t.Run(name, func(t *testing.T) {
			var sc Scanner
			var simple []bool
			require.True(t, sc.Scan(d, tc.proto, tc.encode(ok, tc.big), func(s *ScannedSeries) { simple = append(simple, s.Simple) }))
			require.Equal(t, []bool{true, false}, simple)
			require.False(t, sc.Scan(d, tc.proto, tc.encode(ok, ok, ok), func(*ScannedSeries) {}), "3 series over a limit of 2")
		})
	}
}

// FuzzNextField: nextField's short path splits every input exactly as
// protowire does.
func FuzzNextField(f *testing.F) {
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Add([]byte{0x0a, 0x05, 0x00})
	f.Add([]byte{0x02, 0x00})
	f.Add([]byte{0x09, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		num, typ, tn, end := nextField(b)
		wnum, wtyp, wtn := protowire.ConsumeTag(b)
		if wtn < 0 {
			require.Negative(t, end)
			return
		}
		vn := protowire.ConsumeFieldValue(wnum, wtyp, b[wtn:])
		if vn < 0 {
			require.Negative(t, end)
			return
		}
		require.Equal(t, []int{int(wnum), int(wtyp), wtn, wtn + vn}, []int{int(num), int(typ), tn, end})
	})
}
