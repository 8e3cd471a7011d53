package loadgen

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireRoundTrip encodes round r of g with enc and checks the decoded body
// holds exactly the generated points.
func requireRoundTrip(t testing.TB, g *Generator, enc *Encoder, r int, batch int) {
	pts := g.Round(r, int64(1_000+r))
	for off := 0; off < len(pts); off += batch {
		want := pts[off:min(off+batch, len(pts))]
		body, err := enc.Encode(want)
		require.NoError(t, err)
		ct := ContentTypeV1
		if enc.protocol == ProtocolV2 {
			ct = ContentTypeV2
		}
		got, err := decodeBody(ct, body)
		require.NoError(t, err)
		require.Len(t, got.series, len(want))
		for i, p := range want {
			s := got.series[i]
			require.Equal(t, p.Labels, s.labels)
			require.Equal(t, p.Timestamp, s.timestamp)
			if p.Histogram != nil {
				require.Len(t, s.histograms, 1)
				require.Equal(t, p.Histogram.String(), s.histograms[0].String())
			} else {
				require.Len(t, s.samples, 1)
				require.Equal(t, p.Value, s.samples[0].Value)
			}
			require.Equal(t, p.Exemplar != nil, len(s.exemplars) == 1)
			if p.Exemplar != nil {
				require.Equal(t, p.Exemplar.Labels, s.exemplars[0].Labels)
			}
		}
	}
}

func TestEncoderReuse(t *testing.T) {
	for _, p := range []Protocol{ProtocolV1, ProtocolV2} {
		t.Run(string(p), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Metrics, cfg.SeriesPerMetric, cfg.Histograms, cfg.Exemplars, cfg.Metadata = 6, 9, 2, 4, true
			g, err := NewGenerator(cfg)
			require.NoError(t, err)
			enc, err := NewEncoder(g, p, true)
			require.NoError(t, err)
			// Shrinking and growing batches exercise buffer reuse.
			for r, batch := range []int{54, 5, 20, 1, 54} {
				requireRoundTrip(t, g, enc, r, batch)
			}
		})
	}
	_, err := NewEncoder(nil, "9", false)
	require.ErrorContains(t, err, "protocol")
}

func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint8(4), uint8(2), uint8(3), uint8(1), uint8(2), true, true, uint8(0), uint8(5))
	f.Add(uint8(1), uint8(1), uint8(0), uint8(1), uint8(0), uint8(0), false, false, uint8(9), uint8(1))
	f.Fuzz(func(t *testing.T, metrics, series, nLabels, card, hists, exemplars uint8, v2, md bool, round, batch uint8) {
		cfg := DefaultConfig()
		cfg.Metrics = int(metrics%8) + 1
		cfg.SeriesPerMetric = int(series%16) + 1
		cfg.Labels, cfg.LabelCardinality = int(nLabels%5), int(card%6)+1
		cfg.Histograms = float64(int(hists) % (cfg.Metrics + 1))
		cfg.Exemplars = int(exemplars % 10)
		p := ProtocolV1
		if v2 {
			p = ProtocolV2
		}
		g, err := NewGenerator(cfg)
		require.NoError(t, err)
		enc, err := NewEncoder(g, p, md)
		require.NoError(t, err)
		requireRoundTrip(t, g, enc, int(round), int(batch%64)+1)
	})
}

func FuzzParseWritten(f *testing.F) {
	for _, s := range []string{"", "0", "17", "-3", "1e3", "99999999999999999999", " 5", "01", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := parseWritten(s)
		require.GreaterOrEqual(t, n, int64(0))
		if want, err := strconv.ParseInt(s, 10, 64); err == nil && want >= 0 {
			require.Equal(t, want, n, "valid counts are kept")
		} else {
			require.Zero(t, n, "malformed or negative values count as 0")
		}
	})
}

func BenchmarkEncode1000Series(b *testing.B) {
	for _, p := range []Protocol{ProtocolV1, ProtocolV2} {
		for _, extras := range []bool{false, true} {
			name := string(p) + "/floats"
			cfg := DefaultConfig()
			cfg.Metrics, cfg.SeriesPerMetric, cfg.Labels, cfg.LabelCardinality = 10, 100, 3, 10
			if extras {
				name = string(p) + "/hist+exemplars+metadata"
				cfg.Histograms, cfg.Exemplars, cfg.Metadata = 0.2, 10, true
			}
			b.Run(name, func(b *testing.B) {
				g, err := NewGenerator(cfg)
				require.NoError(b, err)
				enc, err := NewEncoder(g, p, cfg.Metadata)
				require.NoError(b, err)
				b.ReportAllocs()
				var bytes int
				r := 0
				for b.Loop() {
					pts := g.Round(r, int64(r))
					body, err := enc.Encode(pts)
					if err != nil {
						b.Fatal(err)
					}
					bytes = len(body)
					r++
				}
				b.ReportMetric(float64(bytes), "body_bytes")
			})
		}
	}
}
