package record_test

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// TestAppendLabel: a label field is what gogo/protobuf writes for a
// TimeSeries of that one label, on either side of the one-byte lengths
// (a Label message of 127 and 128 bytes, a name or value of 128 bytes).
func TestAppendLabel(t *testing.T) {
	for name, tc := range map[string]struct{ name, value string }{
		"short":                 {"job", "api"},
		"empty value":           {"job", ""},
		"message of 127 bytes":  {"n", strings.Repeat("v", 127-4-1)},
		"message of 128 bytes":  {"n", strings.Repeat("v", 128-4-1)},
		"message of 129 bytes":  {"n", strings.Repeat("v", 129-5-1)},
		"value of 128 bytes":    {"n", strings.Repeat("v", 128)},
		"name of 128 bytes":     {strings.Repeat("n", 128), "v"},
		"value of 20,000 bytes": {"n", strings.Repeat("v", 20_000)},
	} {
		t.Run(name, func(t *testing.T) {
			got := record.AppendLabel([]byte("prefix"), tc.name, tc.value)
			require.Equal(t, "prefix", string(got[:6]), "appends")
			got = got[6:]
			require.Len(t, got, record.LabelSize(tc.name, tc.value))
			if tc.value != "" { // proto3 writers omit an empty value; AppendLabel keeps it
				want, err := (&prompb.TimeSeries{Labels: []prompb.Label{{Name: tc.name, Value: tc.value}}}).Marshal()
				require.NoError(t, err)
				require.Equal(t, want, got)
			}
			n := 0
			record.ForEachLabel(got, func(name, value []byte) {
				n++
				require.Equal(t, tc.name, string(name))
				require.Equal(t, tc.value, string(value))
			})
			require.Equal(t, 1, n)
		})
	}
}

// BenchmarkAppendLabel appends the labels of a typical series (the
// distributor builds a cache key of them from every 2.0 series it reads).
func BenchmarkAppendLabel(b *testing.B) {
	ls := [][2]string{{"__name__", "http_server_requests_total"}, {"instance", "10.1.2.3:8080"}, {"job", "checkout"}, {"pod", "checkout-7d9f8b6c5-x2x9z"}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, l := range ls {
			buf = record.AppendLabel(buf, l[0], l[1])
		}
	}
}
