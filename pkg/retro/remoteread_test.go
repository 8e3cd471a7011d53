package retro

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// xorChunk encodes samples as one XOR chunk.
func xorChunk(t testing.TB, samples ...Sample) prompb.Chunk {
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	require.NoError(t, err)
	for _, s := range samples {
		app.Append(0, s.T, s.V)
	}
	return prompb.Chunk{MinTimeMs: samples[0].T, MaxTimeMs: samples[len(samples)-1].T, Type: prompb.Chunk_XOR, Data: c.Bytes()}
}

// frame appends one frame of msg as Prometheus streams it.
func frame(t testing.TB, dst []byte, msg *prompb.ChunkedReadResponse) []byte {
	b, err := msg.Marshal()
	require.NoError(t, err)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(b, castagnoli))
	return append(dst, b...)
}

func chunked(ls labels.Labels, chunks ...prompb.Chunk) *prompb.ChunkedSeries {
	cs := &prompb.ChunkedSeries{Chunks: chunks}
	ls.Range(func(l labels.Label) { cs.Labels = append(cs.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
	return cs
}

func TestParseChunkedRead(t *testing.T) {
	a := labels.FromStrings("__name__", "m", "i", "a")
	b := labels.FromStrings("__name__", "m", "i", "b")
	var body []byte
	// a over two frames, its chunks overlapping and reaching outside
	// [10, 50]; then b.
	body = frame(t, body, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
		chunked(a, xorChunk(t, Sample{5, 0.5}, Sample{10, 1}, Sample{20, 2}), xorChunk(t, Sample{20, 2}, Sample{30, 3})),
	}})
	body = frame(t, body, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
		chunked(a, xorChunk(t, Sample{40, 4}, Sample{60, 6})),
		chunked(b, xorChunk(t, Sample{50, 5})),
	}})
	got, err := parseChunkedRead(bytes.NewReader(body), 10, 50)
	require.NoError(t, err)
	assert.Equal(t, []Series{
		{Labels: a, Samples: []Sample{{10, 1}, {20, 2}, {30, 3}, {40, 4}}},
		{Labels: b, Samples: []Sample{{50, 5}}},
	}, got)

	empty, err := parseChunkedRead(bytes.NewReader(nil), 0, 1)
	require.NoError(t, err)
	assert.Empty(t, empty)

	for name, tc := range map[string]struct {
		body    []byte
		wantErr string
	}{
		"bad checksum": {func() []byte { c := bytes.Clone(body); c[len(c)-1] ^= 1; return c }(), "checksum mismatch"},
		"cut frame":    {body[:len(body)-3], "remote read: frame"},
		"huge frame":   {binary.AppendUvarint(nil, maxFrameBytes+1), "more than"},
		"unknown chunk type": {frame(t, nil, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
			chunked(a, prompb.Chunk{Type: prompb.Chunk_UNKNOWN, Data: []byte{0, 0}}),
		}}), "has UNKNOWN chunks"},
		"not a chunk": {frame(t, nil, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
			chunked(a, prompb.Chunk{Type: prompb.Chunk_XOR, Data: []byte{0xff}}),
		}}), "chunk"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseChunkedRead(bytes.NewReader(tc.body), 0, 100)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func FuzzParseChunkedRead(f *testing.F) {
	a := labels.FromStrings("__name__", "m")
	f.Add(frame(f, nil, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{chunked(a, xorChunk(f, Sample{1, 1}, Sample{2, 2}))}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseChunkedRead(bytes.NewReader(b), 0, 100)
	})
}

// FuzzAppendChunk feeds chunk bytes straight to the decoder (a frame's
// checksum keeps most mutated bodies away from it).
func FuzzAppendChunk(f *testing.F) {
	f.Add(uint8(prompb.Chunk_XOR), xorChunk(f, Sample{1, 1}, Sample{2, 2.5}, Sample{40, -1}).Data)
	f.Add(uint8(prompb.Chunk_XOR), []byte{0, 1})
	f.Add(uint8(prompb.Chunk_HISTOGRAM), histogramChunk(f, false, 1, 2, 40).Data)
	f.Add(uint8(prompb.Chunk_FLOAT_HISTOGRAM), histogramChunk(f, true, 1, 2, 40).Data)
	ls := labels.FromStrings("__name__", "m")
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		_ = appendChunk(&Series{Labels: ls}, prompb.Chunk{Type: prompb.Chunk_Encoding(typ % 4), Data: data}, 0, 100)
	})
}

// testHistogram is a small native histogram whose counts grow with k.
func testHistogram(k int) *histogram.Histogram {
	return &histogram.Histogram{
		Count: uint64(3 + 2*k), ZeroCount: 1, Sum: 10.5 * float64(k+1), Schema: 0, ZeroThreshold: 0.001,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{int64(1 + k), 0},
	}
}

// histogramChunk is a chunk of testHistogram(i) at each of ts, with
// integer or float counts.
func histogramChunk(t testing.TB, float bool, ts ...int64) prompb.Chunk {
	var c chunkenc.Chunk = chunkenc.NewHistogramChunk()
	typ := prompb.Chunk_HISTOGRAM
	if float {
		c, typ = chunkenc.NewFloatHistogramChunk(), prompb.Chunk_FLOAT_HISTOGRAM
	}
	app, err := c.Appender()
	require.NoError(t, err)
	for i, tm := range ts {
		var nc chunkenc.Chunk
		if float {
			nc, _, app, err = app.AppendFloatHistogram(nil, 0, tm, testHistogram(i).ToFloat(nil), true)
		} else {
			nc, _, app, err = app.AppendHistogram(nil, 0, tm, testHistogram(i), true)
		}
		require.NoError(t, err)
		require.Nil(t, nc, "the test histograms fit one chunk")
	}
	return prompb.Chunk{MinTimeMs: ts[0], MaxTimeMs: ts[len(ts)-1], Type: typ, Data: c.Bytes()}
}

// TestHistogramChunks: integer and float native histogram chunks are read
// into Series.Histograms, in range and without the overlap of a second
// chunk, next to the float samples of XOR chunks.
func TestHistogramChunks(t *testing.T) {
	a := labels.FromStrings("__name__", "h")
	body := frame(t, nil, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
		chunked(a, histogramChunk(t, false, 5, 10, 20), histogramChunk(t, true, 10, 20, 30), xorChunk(t, Sample{15, 1.5})),
	}})
	got, err := parseChunkedRead(bytes.NewReader(body), 10, 30)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, []Sample{{15, 1.5}}, got[0].Samples)
	var ts []int64
	for _, h := range got[0].Histograms {
		ts = append(ts, h.T)
	}
	assert.Equal(t, []int64{10, 20, 30}, ts, "5 is out of range; 10 and 20 come once")
	assert.NotNil(t, got[0].Histograms[0].H, "an integer chunk gives integer histograms")
	assert.True(t, got[0].Histograms[0].float().Equals(testHistogram(1).ToFloat(nil).Compact(0)))
	assert.NotNil(t, got[0].Histograms[2].FH, "a float chunk gives float histograms")
	assert.True(t, got[0].Histograms[2].float().Equals(testHistogram(2).ToFloat(nil).Compact(0)))
}
