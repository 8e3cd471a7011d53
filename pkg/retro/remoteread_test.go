package retro

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

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
		"histograms": {frame(t, nil, &prompb.ChunkedReadResponse{ChunkedSeries: []*prompb.ChunkedSeries{
			chunked(a, prompb.Chunk{Type: prompb.Chunk_HISTOGRAM, Data: []byte{0, 0}}),
		}}), "has HISTOGRAM chunks"},
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
	f.Add(xorChunk(f, Sample{1, 1}, Sample{2, 2.5}, Sample{40, -1}).Data)
	f.Add([]byte{0, 1})
	ls := labels.FromStrings("__name__", "m")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = appendChunk(nil, ls, prompb.Chunk{Type: prompb.Chunk_XOR, Data: data}, 0, 100)
	})
}
