package retro

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Remote read (Prometheus' /api/v1/read). The job asks for streamed XOR
// chunks, which Prometheus sends series after series in frames (so an
// answer is decoded as it arrives, never held whole) and falls back to
// the SAMPLES answer of servers that only speak that.

// maxFrameBytes bounds one frame of a streamed answer (Prometheus sends
// frames of about 1 MiB: --storage.remote.read-max-bytes-in-frame).
const maxFrameBytes = 64 << 20

// castagnoli is the CRC32 table of the frames' checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// remoteRead reads series with /api/v1/read, one query per series with
// equality matchers (keepExact removes series with more labels), keeping
// the samples in [start, end].
func (b *HTTPBackend) remoteRead(ctx context.Context, series []labels.Labels, start, end int64) ([]Series, error) {
	rr := &prompb.ReadRequest{AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS, prompb.ReadRequest_SAMPLES}}
	for _, s := range series {
		q := &prompb.Query{StartTimestampMs: start, EndTimestampMs: end}
		s.Range(func(l labels.Label) {
			q.Matchers = append(q.Matchers, &prompb.LabelMatcher{Type: prompb.LabelMatcher_EQ, Name: l.Name, Value: l.Value})
		})
		rr.Queries = append(rr.Queries, q)
	}
	raw, err := rr.Marshal()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/api/v1/read", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("remote read: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-streamed-protobuf") {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
		if err != nil {
			return nil, fmt.Errorf("remote read: read answer: %w", err)
		}
		if resp.StatusCode/100 != 2 {
			msg := strings.TrimSpace(string(body))
			if len(msg) > 512 {
				msg = msg[:512]
			}
			return nil, &httpStatusError{op: "remote read", status: resp.StatusCode, body: msg}
		}
		return parseReadResponse(body)
	}
	return parseChunkedRead(resp.Body, start, end)
}

// parseChunkedRead decodes a streamed remote read answer: frames of
// uvarint size, big-endian CRC32 (Castagnoli) and a ChunkedReadResponse,
// whose series come one after the other, a series possibly over several
// frames, with chunks in start time order that may overlap and may reach
// outside [start, end].
func parseChunkedRead(r io.Reader, start, end int64) ([]Series, error) {
	br := bufio.NewReader(r)
	var (
		out  []Series
		data []byte
		msg  prompb.ChunkedReadResponse
		last string // the rendered labels of out's last series
	)
	for {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("remote read: frame size: %w", err)
		}
		if size > maxFrameBytes {
			return nil, fmt.Errorf("remote read: frame of %d bytes, more than %d", size, maxFrameBytes)
		}
		var sum uint32
		if err := binary.Read(br, binary.BigEndian, &sum); err != nil {
			return nil, fmt.Errorf("remote read: frame checksum: %w", err)
		}
		if uint64(cap(data)) < size {
			data = make([]byte, size)
		}
		data = data[:size]
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, fmt.Errorf("remote read: frame: %w", err)
		}
		if crc32.Checksum(data, castagnoli) != sum {
			return nil, errors.New("remote read: frame checksum mismatch")
		}
		msg.Reset()
		if err := msg.Unmarshal(data); err != nil {
			return nil, fmt.Errorf("remote read: decode frame: %w", err)
		}
		for _, cs := range msg.ChunkedSeries {
			var sb labels.ScratchBuilder
			for _, l := range cs.Labels {
				sb.Add(l.Name, l.Value)
			}
			sb.Sort()
			ls := sb.Labels()
			if key := ls.String(); len(out) == 0 || key != last {
				out = append(out, Series{Labels: ls})
				last = key
			}
			s := &out[len(out)-1]
			for _, c := range cs.Chunks {
				if err := appendChunk(s, c, start, end); err != nil {
					return nil, err
				}
			}
		}
	}
}

// appendChunk appends to s the samples of chunk c in [start, end] that
// come after the last of their kind in s (chunks may overlap): floats
// from XOR chunks, native histograms from histogram chunks.
func appendChunk(s *Series, c prompb.Chunk, start, end int64) (err error) {
	var enc chunkenc.Encoding
	switch c.Type {
	case prompb.Chunk_XOR:
		enc = chunkenc.EncXOR
		if len(c.Data) < 2 { // the sample count, which chunkenc's iterator reads unchecked
			return fmt.Errorf("remote read: %s: %s chunk of %d bytes", s.Labels, c.Type, len(c.Data))
		}
	case prompb.Chunk_HISTOGRAM, prompb.Chunk_FLOAT_HISTOGRAM:
		enc = chunkenc.EncHistogram
		if c.Type == prompb.Chunk_FLOAT_HISTOGRAM {
			enc = chunkenc.EncFloatHistogram
		}
		// The header and the bucket layout, which chunkenc trusts.
		if err := checkHistogramLayout(c.Data); err != nil {
			return fmt.Errorf("remote read: %s: malformed %s chunk: %w", s.Labels, c.Type, err)
		}
	default:
		// Copying only what can be read and then deleting the series would
		// lose the rest.
		return fmt.Errorf("remote read: %s has %s chunks: %w (narrow the selector)", s.Labels, c.Type, ErrUnsupported)
	}
	// The chunk comes from the network, and chunkenc trusts its input: a
	// malformed chunk it panics on is this job's error, not the process's
	// end (FuzzAppendChunk).
	n, h := len(s.Samples), len(s.Histograms)
	defer func() {
		if r := recover(); r != nil {
			s.Samples, s.Histograms = s.Samples[:n], s.Histograms[:h]
			err = fmt.Errorf("remote read: %s: malformed %s chunk: %v", s.Labels, c.Type, r)
		}
	}()
	ch, err := chunkenc.FromData(enc, c.Data)
	if err != nil {
		return fmt.Errorf("remote read: %s: chunk: %w", s.Labels, err)
	}
	it := ch.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		switch vt {
		case chunkenc.ValFloat:
			t, v := it.At()
			if t < start || t > end || (len(s.Samples) > 0 && t <= s.Samples[len(s.Samples)-1].T) {
				continue
			}
			s.Samples = append(s.Samples, Sample{T: t, V: v})
		case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
			t := it.AtT()
			if t < start || t > end || (len(s.Histograms) > 0 && t <= s.Histograms[len(s.Histograms)-1].T) {
				continue
			}
			h := Histogram{T: t}
			if vt == chunkenc.ValHistogram {
				_, h.H = it.AtHistogram(nil)
			} else {
				_, h.FH = it.AtFloatHistogram(nil)
			}
			s.Histograms = append(s.Histograms, h)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("remote read: %s: chunk: %w", s.Labels, err)
	}
	return nil
}

// parseReadResponse decodes a remote read answer (snappy, SAMPLES).
func parseReadResponse(body []byte) ([]Series, error) {
	dec, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("remote read: decode answer: %w", err)
	}
	var resp prompb.ReadResponse
	if err := resp.Unmarshal(dec); err != nil {
		return nil, fmt.Errorf("remote read: decode answer: %w", err)
	}
	var out []Series
	seen := map[string]bool{}
	for _, r := range resp.Results {
		for _, ts := range r.Timeseries {
			var sb labels.ScratchBuilder
			for _, l := range ts.Labels {
				sb.Add(l.Name, l.Value)
			}
			sb.Sort()
			ls := sb.Labels()
			if seen[ls.String()] {
				continue
			}
			seen[ls.String()] = true
			s := Series{Labels: ls, Samples: make([]Sample, len(ts.Samples))}
			for i, smp := range ts.Samples {
				s.Samples[i] = Sample{T: smp.Timestamp, V: smp.Value}
			}
			for _, h := range ts.Histograms {
				hs := Histogram{T: h.Timestamp}
				if h.IsFloatHistogram() {
					hs.FH = h.ToFloatHistogram()
				} else {
					hs.H = h.ToIntHistogram()
				}
				s.Histograms = append(s.Histograms, hs)
			}
			out = append(out, s)
		}
	}
	return out, nil
}
