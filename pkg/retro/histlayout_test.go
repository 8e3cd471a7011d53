package retro

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bitWriter writes a chunk bit stream most significant bit first, for
// hand-made layouts.
type bitWriter struct {
	b []byte
	n uint64 // bits written
}

func (w *bitWriter) bits(v uint64, n uint64) *bitWriter {
	for i := int(n) - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>uint(i)&1) << (7 - w.n%8)
		w.n++
	}
	return w
}

// varbit writes v with the shortest varbit width that holds it unsigned.
func (w *bitWriter) varbit(v uint64) *bitWriter {
	for ones, width := range varbitWidths {
		if width == 64 || v < 1<<width {
			w.bits(1<<ones-1, uint64(ones)) // the ones of the prefix
			if ones < 8 {
				w.bits(0, 1)
			}
			return w.bits(v, width)
		}
	}
	panic("unreachable")
}

// layoutChunk is a histogram chunk header for one sample, the zero
// threshold 0 and schema 0, the given positive spans (lengths), no
// negative spans, and then pad bytes.
func layoutChunk(pad int, lengths ...uint64) []byte {
	w := &bitWriter{}
	w.bits(0, 8).varbit(0).varbit(uint64(len(lengths)))
	for _, l := range lengths {
		w.varbit(l).varbit(0)
	}
	w.varbit(0) // no negative spans
	return append(append([]byte{0, 1, 0}, w.b...), make([]byte, pad)...)
}

func TestCheckHistogramLayout(t *testing.T) {
	for name, tc := range map[string]struct {
		data []byte
		err  string
	}{
		"integer chunk":     {histogramChunk(t, false, 1, 2, 40).Data, ""},
		"float chunk":       {histogramChunk(t, true, 1, 2, 40).Data, ""},
		"no samples":        {[]byte{0, 0, 0}, ""},
		"fits":              {layoutChunk(1, 2, 3), ""},
		"short header":      {[]byte{0, 1}, "shorter than its header"},
		"cut layout":        {layoutChunk(0, 2)[:4], "cut short"},
		"one huge span":     {layoutChunk(64, 1<<32-1), "more than 65536 buckets"},
		"many spans":        {layoutChunk(64, 40000, 40000), "more than 65536 buckets"},
		"more than fit":     {layoutChunk(2, 100), "declares 100 buckets but only"},
		"endless span list": {append([]byte{0, 1, 0}, (&bitWriter{}).bits(0, 8).varbit(0).varbit(1<<40).b...), "cut short"},
	} {
		t.Run(name, func(t *testing.T) {
			err := checkHistogramLayout(tc.data)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// TestHostileHistogramChunkIsAnError: a few-byte chunk declaring 2^32
// buckets, which chunkenc would try to allocate, is the series' error.
func TestHostileHistogramChunkIsAnError(t *testing.T) {
	for _, typ := range []prompb.Chunk_Encoding{prompb.Chunk_HISTOGRAM, prompb.Chunk_FLOAT_HISTOGRAM} {
		s := &Series{Labels: labels.FromStrings("__name__", "h")}
		err := appendChunk(s, prompb.Chunk{Type: typ, Data: layoutChunk(16, 1<<32-1)}, 0, 100)
		assert.ErrorContains(t, err, `remote read: {__name__="h"}: malformed `+typ.String()+` chunk: the bucket layout declares more than 65536 buckets`)
		assert.Empty(t, s.Histograms)
	}
}

// TestHistogramLayoutMatchesChunkenc: the layout reader counts the buckets
// chunkenc wrote, for histograms with positive and negative spans and a
// zero threshold that needs the long form.
func TestHistogramLayoutMatchesChunkenc(t *testing.T) {
	h := testHistogram(0)
	h.ZeroThreshold = 0.3 // not a power of two: 0xff and 8 bytes
	h.PositiveSpans = []histogram.Span{{Offset: -3, Length: 2}, {Offset: 7, Length: 3}}
	h.PositiveBuckets = []int64{1, 0, 2, -1, 0}
	h.NegativeSpans = []histogram.Span{{Offset: 1000, Length: 4}}
	h.NegativeBuckets = []int64{1, 1, 1, 1}
	h.Count = 20 // zero 1, positive 1+1+3+2+2, negative 1+2+3+4
	for _, float := range []bool{false, true} {
		var c chunkenc.Chunk = chunkenc.NewHistogramChunk()
		if float {
			c = chunkenc.NewFloatHistogramChunk()
		}
		app, err := c.Appender()
		require.NoError(t, err)
		if float {
			_, _, _, err = app.AppendFloatHistogram(nil, 0, 1, h.ToFloat(nil), true)
		} else {
			_, _, _, err = app.AppendHistogram(nil, 0, 1, h, true)
		}
		require.NoError(t, err)
		buckets, _, err := histogramLayoutBuckets(c.Bytes())
		require.NoError(t, err)
		assert.Equal(t, uint64(9), buckets, "float %v", float)
		require.NoError(t, checkHistogramLayout(c.Bytes()))
	}
}
