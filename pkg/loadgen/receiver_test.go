package loadgen

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// decodedSeries is one time series of a decoded request.
type decodedSeries struct {
	labels     labels.Labels
	samples    []prompb.Sample
	histograms []*histogram.Histogram
	exemplars  []exemplar.Exemplar
	metadata   metadata.Metadata // RW2 only
	timestamp  int64             // of the first sample or histogram
}

// decodedRequest is a decoded Remote Write request of either protocol.
type decodedRequest struct {
	series   []decodedSeries
	families map[string]prompb.MetricMetadata // RW1 only
}

// decodeBody decodes a snappy-compressed RW1 or RW2 body.
func decodeBody(contentType string, body []byte) (decodedRequest, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return decodedRequest{}, fmt.Errorf("snappy: %w", err)
	}
	out := decodedRequest{families: map[string]prompb.MetricMetadata{}}
	b := labels.NewScratchBuilder(8)
	switch contentType {
	case ContentTypeV1:
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			return decodedRequest{}, fmt.Errorf("unmarshal v1: %w", err)
		}
		for _, ts := range req.Timeseries {
			s := decodedSeries{labels: ts.ToLabels(&b, nil), samples: ts.Samples}
			for _, h := range ts.Histograms {
				s.histograms = append(s.histograms, h.ToIntHistogram())
				s.timestamp = h.Timestamp
			}
			for _, e := range ts.Exemplars {
				s.exemplars = append(s.exemplars, e.ToExemplar(&b, nil))
			}
			if len(s.samples) > 0 {
				s.timestamp = s.samples[0].Timestamp
			}
			out.series = append(out.series, s)
		}
		for _, md := range req.Metadata {
			if _, dup := out.families[md.MetricFamilyName]; dup {
				return decodedRequest{}, fmt.Errorf("family %q described twice in one request", md.MetricFamilyName)
			}
			out.families[md.MetricFamilyName] = md
		}
	case ContentTypeV2:
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			return decodedRequest{}, fmt.Errorf("unmarshal v2: %w", err)
		}
		if len(req.Symbols) == 0 || req.Symbols[0] != "" {
			return decodedRequest{}, fmt.Errorf("symbols must start with the empty string")
		}
		for _, ts := range req.Timeseries {
			ls, err := ts.ToLabels(&b, req.Symbols)
			if err != nil {
				return decodedRequest{}, err
			}
			s := decodedSeries{labels: ls}
			for _, smp := range ts.Samples {
				s.samples = append(s.samples, prompb.Sample{Value: smp.Value, Timestamp: smp.Timestamp})
			}
			for _, h := range ts.Histograms {
				s.histograms = append(s.histograms, h.ToIntHistogram())
				s.timestamp = h.Timestamp
			}
			for _, e := range ts.Exemplars {
				ex, err := e.ToExemplar(&b, req.Symbols)
				if err != nil {
					return decodedRequest{}, err
				}
				s.exemplars = append(s.exemplars, ex)
			}
			if s.metadata, err = ts.ToMetadata(req.Symbols); err != nil {
				return decodedRequest{}, err
			}
			if len(s.samples) > 0 {
				s.timestamp = s.samples[0].Timestamp
			}
			out.series = append(out.series, s)
		}
	default:
		return decodedRequest{}, fmt.Errorf("unexpected content type %q", contentType)
	}
	return out, nil
}

// receiver is an httptest Remote Write endpoint that decodes and records
// every accepted request. respond picks the status of the n-th request (0-based).
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	respond func(n int) int

	mu       sync.Mutex
	attempts int
	headers  []http.Header
	requests []decodedRequest
}

func newReceiver(t testing.TB, respond func(n int) int) *receiver {
	r := &receiver{t: t, respond: respond}
	if r.respond == nil {
		r.respond = func(int) int { return http.StatusNoContent }
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/api/v1/write" }

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	n := r.attempts
	r.attempts++
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	code := r.respond(n)
	if code/100 != 2 {
		http.Error(w, "injected failure", code)
		return
	}
	dec, err := decodeBody(req.Header.Get("Content-Type"), body)
	if err != nil {
		r.t.Errorf("decode request: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, dec)
	r.mu.Unlock()
	if req.Header.Get("Content-Type") == ContentTypeV2 {
		var floats, hists, exs int
		for _, s := range dec.series {
			floats += len(s.samples)
			hists += len(s.histograms)
			exs += len(s.exemplars)
		}
		w.Header().Set(HeaderSamplesWritten, strconv.Itoa(floats))
		w.Header().Set(HeaderHistogramsWritten, strconv.Itoa(hists))
		w.Header().Set(HeaderExemplarsWritten, strconv.Itoa(exs))
	}
	w.WriteHeader(code)
}

// snapshot returns the accepted requests and the headers of all attempts.
func (r *receiver) snapshot() ([]decodedRequest, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]decodedRequest(nil), r.requests...), append([]http.Header(nil), r.headers...)
}
