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
				if s.Samples, err = appendChunk(s.Samples, ls, c, start, end); err != nil {
					return nil, err
				}
			}
		}
	}
}

// appendChunk appends the samples of chunk c in [start, end] that come
// after the last of dst (chunks may overlap).
func appendChunk(dst []Sample, ls labels.Labels, c prompb.Chunk, start, end int64) ([]Sample, error) {
	if c.Type != prompb.Chunk_XOR {
		// Copying only the float samples and then deleting the series would
		// lose the histograms.
		return nil, fmt.Errorf("remote read: %s has %s chunks: %w (narrow the selector to float series)", ls, c.Type, ErrUnsupported)
	}
	if len(c.Data) < 2 { // the sample count; chunkenc's iterator reads it unchecked
		return nil, fmt.Errorf("remote read: %s: chunk of %d bytes", ls, len(c.Data))
	}
	ch, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
	if err != nil {
		return nil, fmt.Errorf("remote read: %s: chunk: %w", ls, err)
	}
	it := ch.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		t, v := it.At()
		if t < start || t > end || (len(dst) > 0 && t <= dst[len(dst)-1].T) {
			continue
		}
		dst = append(dst, Sample{T: t, V: v})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("remote read: %s: chunk: %w", ls, err)
	}
	return dst, nil
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
			if len(ts.Histograms) > 0 {
				// Copying only the float samples and then deleting the
				// series would lose the histograms.
				return nil, fmt.Errorf("remote read: %s has native histogram samples: %w (narrow the selector to float series)", ls, ErrUnsupported)
			}
			if seen[ls.String()] {
				continue
			}
			seen[ls.String()] = true
			s := Series{Labels: ls, Samples: make([]Sample, len(ts.Samples))}
			for i, smp := range ts.Samples {
				s.Samples[i] = Sample{T: smp.Timestamp, V: smp.Value}
			}
			out = append(out, s)
		}
	}
	return out, nil
}
