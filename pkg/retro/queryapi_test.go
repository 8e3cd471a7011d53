package retro

import (
	"bytes"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuerySample(t *testing.T) {
	for name, tc := range map[string]struct {
		in      [2]any
		want    Sample
		wantErr string
	}{
		"millisecond timestamp": {in: [2]any{1733300000.123, "1.5"}, want: Sample{T: 1733300000123, V: 1.5}},
		"whole second":          {in: [2]any{float64(1733300000), "-2"}, want: Sample{T: 1733300000000, V: -2}},
		"infinity":              {in: [2]any{1.001, "+Inf"}, want: Sample{T: 1001, V: math.Inf(1)}},
		"negative time":         {in: [2]any{-1.5, "0"}, want: Sample{T: -1500, V: 0}},
		"value not a string":    {in: [2]any{1.0, 2.0}, wantErr: "want [seconds"},
		"time not a number":     {in: [2]any{"1", "2"}, wantErr: "want [seconds"},
		"value not a float":     {in: [2]any{1.0, "two"}, wantErr: `sample value "two"`},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := querySample(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	got, err := querySample([2]any{1.0, "NaN"})
	require.NoError(t, err)
	assert.True(t, math.IsNaN(got.V))
}

// TestImportLine: what vmImport sends reads back as VictoriaMetrics'
// export format (the same JSON lines), special values included.
func TestImportLine(t *testing.T) {
	s := Series{Labels: labels.FromStrings("__name__", "m", "path", `/a"b`), Samples: []Sample{{1000, 1.25}, {2000, math.Inf(-1)}, {3000, 1e300}}}
	var buf bytes.Buffer
	require.NoError(t, appendImportLine(&buf, s, s.Samples[:1]))
	assert.Equal(t, `{"metric":{"__name__":"m","path":"/a\"b"},"values":[1.25],"timestamps":[1000]}`+"\n", buf.String())
	buf.Reset()
	require.NoError(t, appendImportLine(&buf, Series{Labels: s.Labels}, []Sample{{1000, 1.25}, {3000, 1e300}}))
	got, err := parseExport(buf.Bytes())
	require.NoError(t, err)
	assert.Equal(t, []Series{{Labels: s.Labels, Samples: []Sample{{1000, 1.25}, {3000, 1e300}}}}, got)
	for v, want := range map[float64]string{math.Inf(1): `"Inf"`, math.Inf(-1): `"-Inf"`, 0.5: "0.5", -3: "-3"} {
		assert.Equal(t, want, importValue(v))
	}
	assert.Equal(t, `"NaN"`, importValue(math.NaN()))
}

func TestNoDeleteAPI(t *testing.T) {
	for kind, want := range map[string]string{KindMimir: "only whole tenants", KindThanos: "thanos tools bucket rewrite"} {
		err := noDeleteAPI(kind)
		require.ErrorIs(t, err, ErrUnsupported, kind)
		assert.ErrorContains(t, err, want)
		assert.ErrorContains(t, err, "delete_originals: false")
	}
	assert.NoError(t, noDeleteAPI(KindPrometheus))
	assert.NoError(t, noDeleteAPI(KindVictoriaMetrics))
}
