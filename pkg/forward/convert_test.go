package forward

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func TestToV1(t *testing.T) {
	b := genBatch("t", 0, 8, 1000)
	v1, err := ToV1(&b.Request, b.Metadata)
	require.NoError(t, err)
	got := newStore()
	got.addV1(v1)
	require.Equal(t, expected(b), got)

	// Start timestamps have no 1.0 field; custom buckets survive.
	require.Equal(t, []prompb.Sample{{Value: 1000.5, Timestamp: 1000}}, v1.Timeseries[0].Samples)
	require.Equal(t, []float64{0.1, 0.5, 1}, v1.Timeseries[3].Histograms[0].CustomValues)

	// Metadata: explicit entries first, then one per family from series.
	fams := make([]string, 0, len(v1.Metadata))
	for _, m := range v1.Metadata {
		fams = append(fams, m.MetricFamilyName)
	}
	require.Equal(t, []string{"http_requests", "orphan_gauge", "latency_seconds", "queue_fill"}, fams)
}

func TestToV1ExplicitMetadataWins(t *testing.T) {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(lbls("__name__", "jobs_total"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("from series")},
	}}}
	req.Symbols = st.Symbols()
	meta := []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "jobs_total", Help: "explicit"},
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "jobs_total", Help: "duplicate"},
	}
	v1, err := ToV1(req, meta)
	require.NoError(t, err)
	require.Equal(t, []prompb.MetricMetadata{meta[0]}, v1.Metadata)
}

func TestToV1Invalid(t *testing.T) {
	tests := map[string]writev2.Request{
		"label ref out of range":    {Symbols: []string{"", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}}}},
		"odd label refs":            {Symbols: []string{"", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1}}}},
		"exemplar ref out of range": {Symbols: []string{"", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 1}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{1, 5}}}}}},
		"help ref out of range":     {Symbols: []string{"", "__name__", "a"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Metadata: writev2.Metadata{Type: 1, HelpRef: 9}}}},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ToV1(&req, nil)
			require.ErrorIs(t, err, ErrInvalidBatch)
		})
	}
}

func TestAttachMetadata(t *testing.T) {
	b := genBatch("t", 0, 8, 1000)
	orig := genBatch("t", 0, 8, 1000)
	out, left, err := attachMetadata(&b.Request, b.Metadata)
	require.NoError(t, err)
	require.Equal(t, orig.Request, b.Request, "input must not be modified")
	require.Equal(t, []prompb.MetricMetadata{familyMeta()[1]}, left, "only the family without series is left over")

	got := newStore()
	got.addV2(out)
	want := expected(b)
	delete(want.Meta, "orphan_gauge")
	require.Equal(t, want, got)

	same, left, err := attachMetadata(&b.Request, nil)
	require.NoError(t, err)
	require.Nil(t, left)
	require.Same(t, &b.Request, same)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Duration
	}{
		"empty":       {"", 0},
		"seconds":     {"120", 2 * time.Minute},
		"zero":        {"0", 0},
		"negative":    {"-5", 0},
		"http date":   {now.Add(90 * time.Second).Format(http1123), 90 * time.Second},
		"past date":   {now.Add(-time.Hour).Format(http1123), 0},
		"garbage":     {"soon", 0},
		"huge":        {"99999999999999999", time.Duration(1<<63-1) / time.Second * time.Second},
		"padded secs": {" 3 ", 3 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, parseRetryAfter(tc.in, now))
		})
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "1", "-1", "Mon, 02 Jan 2006 15:04:05 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		require.GreaterOrEqual(t, parseRetryAfter(s, now), time.Duration(0))
	})
}

// FuzzConvert decodes arbitrary 2.0 requests and runs both protocol paths'
// conversions: they must never panic, and valid requests must convert.
func FuzzConvert(f *testing.F) {
	b := genBatch("t", 0, 8, 1000)
	seed, err := b.Request.Marshal()
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var req writev2.Request
		if req.Unmarshal(data) != nil {
			return
		}
		v1, err := ToV1(&req, familyMeta())
		if validate(&req) == nil {
			require.NoError(t, err)
			require.Len(t, v1.Timeseries, len(req.Timeseries))
		}
		if err == nil {
			_, err = v1.Marshal()
			require.NoError(t, err)
		}
		_, _, _ = attachMetadata(&req, familyMeta())
	})
}
