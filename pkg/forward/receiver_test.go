package forward

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// Normalized, protocol-independent view of what a receiver stored.
type (
	nSample struct {
		T int64
		V float64
	}
	nExemplar struct {
		Labels string
		V      float64
		T      int64
	}
	nHist struct {
		T  int64
		H  *histogram.Histogram
		FH *histogram.FloatHistogram
	}
	nSeries struct {
		Samples    []nSample
		Histograms []nHist
		Exemplars  []nExemplar
	}
	nMeta struct {
		Type       prompb.MetricMetadata_MetricType
		Help, Unit string
	}
)

// store accumulates series (keyed by label string, in arrival order) and
// family metadata.
type store struct {
	Series map[string]*nSeries
	Meta   map[string]nMeta
}

func newStore() *store { return &store{Series: map[string]*nSeries{}, Meta: map[string]nMeta{}} }

func (s *store) series(l string) *nSeries {
	if s.Series[l] == nil {
		s.Series[l] = &nSeries{}
	}
	return s.Series[l]
}

func (s *store) samples() int {
	n := 0
	for _, ser := range s.Series {
		n += len(ser.Samples) + len(ser.Histograms) + len(ser.Exemplars)
	}
	return n
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func normIntHist(h *histogram.Histogram) *histogram.Histogram {
	h.PositiveSpans, h.NegativeSpans = nilIfEmpty(h.PositiveSpans), nilIfEmpty(h.NegativeSpans)
	h.PositiveBuckets, h.NegativeBuckets = nilIfEmpty(h.PositiveBuckets), nilIfEmpty(h.NegativeBuckets)
	h.CustomValues = nilIfEmpty(h.CustomValues)
	return h
}

func normFloatHist(h *histogram.FloatHistogram) *histogram.FloatHistogram {
	h.PositiveSpans, h.NegativeSpans = nilIfEmpty(h.PositiveSpans), nilIfEmpty(h.NegativeSpans)
	h.PositiveBuckets, h.NegativeBuckets = nilIfEmpty(h.PositiveBuckets), nilIfEmpty(h.NegativeBuckets)
	h.CustomValues = nilIfEmpty(h.CustomValues)
	return h
}

func v2LabelString(refs []uint32, symbols []string) string {
	b := labels.NewScratchBuilder(len(refs) / 2)
	for i := 0; i+1 < len(refs); i += 2 {
		b.Add(symbols[refs[i]], symbols[refs[i+1]])
	}
	b.Sort()
	return b.Labels().String()
}

func v1LabelString(ls []prompb.Label) string {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels().String()
}

// addV2 adds a 2.0 request; series metadata is folded per family.
func (s *store) addV2(req *writev2.Request) {
	for _, ts := range req.Timeseries {
		l := v2LabelString(ts.LabelsRefs, req.Symbols)
		ser := s.series(l)
		for _, sm := range ts.Samples {
			ser.Samples = append(ser.Samples, nSample{sm.Timestamp, sm.Value})
		}
		for _, h := range ts.Histograms {
			nh := nHist{T: h.Timestamp}
			if h.IsFloatHistogram() {
				nh.FH = normFloatHist(h.ToFloatHistogram())
			} else {
				nh.H = normIntHist(h.ToIntHistogram())
			}
			ser.Histograms = append(ser.Histograms, nh)
		}
		for _, e := range ts.Exemplars {
			ser.Exemplars = append(ser.Exemplars, nExemplar{v2LabelString(e.LabelsRefs, req.Symbols), e.Value, e.Timestamp})
		}
		if hasMetadata(ts.Metadata) {
			name := metricName(ts.LabelsRefs, req.Symbols)
			s.Meta[record.FamilyName(name, ts.Metadata.Type)] = nMeta{
				Type: prompb.MetricMetadata_MetricType(ts.Metadata.Type),
				Help: req.Symbols[ts.Metadata.HelpRef],
				Unit: req.Symbols[ts.Metadata.UnitRef],
			}
		}
	}
}

// addV1 adds a 1.0 request.
func (s *store) addV1(req *prompb.WriteRequest) {
	for _, ts := range req.Timeseries {
		ser := s.series(v1LabelString(ts.Labels))
		for _, sm := range ts.Samples {
			ser.Samples = append(ser.Samples, nSample{sm.Timestamp, sm.Value})
		}
		for _, h := range ts.Histograms {
			nh := nHist{T: h.Timestamp}
			if h.IsFloatHistogram() {
				nh.FH = normFloatHist(h.ToFloatHistogram())
			} else {
				nh.H = normIntHist(h.ToIntHistogram())
			}
			ser.Histograms = append(ser.Histograms, nh)
		}
		for _, e := range ts.Exemplars {
			ser.Exemplars = append(ser.Exemplars, nExemplar{v1LabelString(e.Labels), e.Value, e.Timestamp})
		}
	}
	for _, m := range req.Metadata {
		s.Meta[m.MetricFamilyName] = nMeta{Type: m.Type, Help: m.Help, Unit: m.Unit}
	}
}

// receiverMode is how a test receiver treats Remote Write 2.0.
type receiverMode int

const (
	modeV2           receiverMode = iota // accepts 1.0 and 2.0, sends *-Written headers
	modeV1Only                           // answers 415 to 2.0
	modeNoWrittenHdr                     // a 1.0 receiver ignoring Content-Type: decodes a 2.0 body as 1.0 (storing nothing), 204 without *-Written headers
)

// fault is a scripted answer consumed by one request before normal handling.
type fault struct {
	status     int
	header     map[string]string
	body       string
	hangUp     bool // close the connection without answering
	samplesHdr string
}

// received describes one accepted request.
type received struct {
	proto    int
	tenant   string
	header   http.Header
	samples  int // samples + histograms + exemplars
	series   int
	metadata int
}

// receiver is an httptest server decoding the real protocols.
type receiver struct {
	t    testing.TB
	srv  *httptest.Server
	mode receiverMode

	mu       sync.Mutex
	faults   []fault
	faultFn  func(n int) *fault // optional, consulted after faults
	requests int
	accepted []received
	store    *store
}

func newReceiver(t testing.TB, mode receiverMode, faults ...fault) *receiver {
	r := &receiver{t: t, mode: mode, faults: faults, store: newStore()}
	r.srv = httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/api/v1/write" }

func (r *receiver) snapshot() ([]received, *store) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := newStore()
	for k, v := range r.store.Series {
		cp := *v
		cp.Samples = append([]nSample(nil), v.Samples...)
		cp.Histograms = append([]nHist(nil), v.Histograms...)
		cp.Exemplars = append([]nExemplar(nil), v.Exemplars...)
		st.Series[k] = &cp
	}
	for k, v := range r.store.Meta {
		st.Meta[k] = v
	}
	return append([]received(nil), r.accepted...), st
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	var f *fault
	if len(r.faults) > 0 {
		f = &r.faults[0]
		r.faults = r.faults[1:]
	} else if r.faultFn != nil {
		f = r.faultFn(r.requests)
	}
	r.mu.Unlock()

	if f != nil && f.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	if f != nil && f.status != 0 {
		for k, v := range f.header {
			w.Header().Set(k, v)
		}
		http.Error(w, f.body, f.status)
		return
	}

	compressed, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.Header.Get("Content-Encoding") != "snappy" {
		http.Error(w, "want snappy", http.StatusUnsupportedMediaType)
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := received{tenant: req.Header.Get("X-Scope-OrgID"), header: req.Header.Clone()}
	switch ct := req.Header.Get("Content-Type"); ct {
	case contentTypeV2:
		if r.mode == modeV1Only {
			http.Error(w, "remote write 2.0 not supported", http.StatusUnsupportedMediaType)
			return
		}
		if r.mode == modeNoWrittenHdr {
			// What VictoriaMetrics or Prometheus 2.x do: the 2.0 fields
			// are unknown to the 1.0 message, so the request decodes as
			// an empty 1.0 request and "succeeds".
			var v1 prompb.WriteRequest
			if err := v1.Unmarshal(raw); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rec.proto, rec.series = 2, len(v1.Timeseries)
			r.mu.Lock()
			r.store.addV1(&v1)
			r.accepted = append(r.accepted, rec)
			r.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		var v2 writev2.Request
		if err := v2.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.proto, rec.series = 2, len(v2.Timeseries)
		var s, h, e int
		for _, ts := range v2.Timeseries {
			s, h, e = s+len(ts.Samples), h+len(ts.Histograms), e+len(ts.Exemplars)
		}
		rec.samples = s + h + e
		r.mu.Lock()
		r.store.addV2(&v2)
		r.accepted = append(r.accepted, rec)
		r.mu.Unlock()
		if r.mode == modeV2 {
			if f != nil && f.samplesHdr != "" {
				w.Header().Set(headerSamplesWritten, f.samplesHdr)
			} else {
				w.Header().Set(headerSamplesWritten, strconv.Itoa(s))
			}
			w.Header().Set(headerHistogramWritten, strconv.Itoa(h))
			w.Header().Set(headerExemplarsWritten, strconv.Itoa(e))
		}
	case contentTypeV1:
		var v1 prompb.WriteRequest
		if err := v1.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.proto, rec.series, rec.metadata = 1, len(v1.Timeseries), len(v1.Metadata)
		for _, ts := range v1.Timeseries {
			rec.samples += len(ts.Samples) + len(ts.Histograms) + len(ts.Exemplars)
		}
		r.mu.Lock()
		r.store.addV1(&v1)
		r.accepted = append(r.accepted, rec)
		r.mu.Unlock()
	default:
		http.Error(w, fmt.Sprintf("unexpected content type %q", ct), http.StatusUnsupportedMediaType)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// requireHeaders checks the protocol headers of an accepted request.
func requireHeaders(t testing.TB, rec received) {
	t.Helper()
	require.Equal(t, "snappy", rec.header.Get("Content-Encoding"))
	require.True(t, strings.HasPrefix(rec.header.Get("User-Agent"), "promgov/"), rec.header.Get("User-Agent"))
	if rec.proto == 2 {
		require.Equal(t, contentTypeV2, rec.header.Get("Content-Type"))
		require.Equal(t, "2.0.0", rec.header.Get(headerVersion))
	} else {
		require.Equal(t, contentTypeV1, rec.header.Get("Content-Type"))
		require.Equal(t, "0.1.0", rec.header.Get(headerVersion))
	}
}

func lbls(kv ...string) labels.Labels { return labels.FromStrings(kv...) }
