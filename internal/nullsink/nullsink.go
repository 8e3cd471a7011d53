// Package nullsink is a Remote Write 1.0/2.0 receiver that keeps nothing:
// it decompresses and decodes each request (so that a malformed forward is
// noticed), counts what it carried and answers 204, with the RW 2.0
// Written headers for 2.0. make bench-e2e uses it as the backend so that
// the measured figure holds promgov's cost only, never a storage's.
package nullsink

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/remotewrite"
)

// maxBytes bounds a request body, compressed and decompressed.
const maxBytes = 64 << 20

// Counts are the totals served by GET /count.
type Counts struct {
	Requests   int64 `json:"requests"`
	Rejected   int64 `json:"rejected"`
	Series     int64 `json:"series"`
	Samples    int64 `json:"samples"`
	Histograms int64 `json:"histograms"`
	Exemplars  int64 `json:"exemplars"`
	Metadata   int64 `json:"metadata"`
}

// Sink counts what it receives. Safe for concurrent use.
type Sink struct {
	requests, rejected, series, samples, histograms, exemplars, metadata atomic.Int64

	bufs sync.Pool // *buffers
}

// buffers are reused between requests so that the sink itself allocates
// little: it shares the machine with what is measured.
type buffers struct {
	body, decoded []byte
	v1            prompb.WriteRequest
	v2            writev2.Request
}

// New returns an empty Sink.
func New() *Sink {
	s := &Sink{}
	s.bufs.New = func() any { return new(buffers) }
	return s
}

// Counts returns the totals so far.
func (s *Sink) Counts() Counts {
	return Counts{
		Requests: s.requests.Load(), Rejected: s.rejected.Load(), Series: s.series.Load(),
		Samples: s.samples.Load(), Histograms: s.histograms.Load(), Exemplars: s.exemplars.Load(),
		Metadata: s.metadata.Load(),
	}
}

// Routes mounts POST /api/v1/write, GET /count and GET /-/ready on mux.
func (s *Sink) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/write", s.write)
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Counts())
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
}

func (s *Sink) write(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	b := s.bufs.Get().(*buffers)
	defer s.bufs.Put(b)
	if err := s.decode(r, b, w.Header()); err != nil {
		s.rejected.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decode reads, decompresses, unmarshals and counts one request; for 2.0 it
// sets the Written headers on h.
func (s *Sink) decode(r *http.Request, b *buffers, h http.Header) error {
	proto, err := remotewrite.ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	body, err := readAll(r.Body, b.body[:0])
	b.body = body
	if err != nil {
		return err
	}
	n, err := snappy.DecodedLen(body)
	if err != nil || n > maxBytes {
		return fmt.Errorf("snappy: decoded length %d: %v", n, err)
	}
	if cap(b.decoded) < n {
		b.decoded = make([]byte, n)
	}
	raw, err := snappy.Decode(b.decoded[:n], body)
	if err != nil {
		return fmt.Errorf("snappy: %w", err)
	}
	var series, samples, hists, exemplars int
	if proto == remotewrite.ProtocolV1 {
		b.v1.Reset()
		if err := b.v1.Unmarshal(raw); err != nil {
			return fmt.Errorf("decode %s: %w", remotewrite.ProtoMessageV1, err)
		}
		for i := range b.v1.Timeseries {
			ts := &b.v1.Timeseries[i]
			samples, hists, exemplars = samples+len(ts.Samples), hists+len(ts.Histograms), exemplars+len(ts.Exemplars)
		}
		series = len(b.v1.Timeseries)
		s.metadata.Add(int64(len(b.v1.Metadata)))
	} else {
		b.v2.Reset()
		if err := b.v2.Unmarshal(raw); err != nil {
			return fmt.Errorf("decode %s: %w", remotewrite.ProtoMessageV2, err)
		}
		series = len(b.v2.Timeseries)
		samples, hists, exemplars = remotewrite.Counts(&b.v2)
		h.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(samples))
		h.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.Itoa(hists))
		h.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.Itoa(exemplars))
	}
	s.series.Add(int64(series))
	s.samples.Add(int64(samples))
	s.histograms.Add(int64(hists))
	s.exemplars.Add(int64(exemplars))
	return nil
}

// readAll reads r into buf, refusing more than maxBytes.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	lr := io.LimitReader(r, maxBytes+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if len(buf) > maxBytes {
				return buf, fmt.Errorf("body over %d bytes", maxBytes)
			}
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
