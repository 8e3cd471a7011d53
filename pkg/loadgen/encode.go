package loadgen

import (
	"fmt"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// HTTP header values of the two Remote Write protocols.
const (
	// ContentTypeV1 is the Content-Type of Remote Write 1.0 requests.
	ContentTypeV1 = "application/x-protobuf"
	// ContentTypeV2 is the Content-Type of Remote Write 2.0 requests.
	ContentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	// VersionV1 is the X-Prometheus-Remote-Write-Version of 1.0 requests.
	VersionV1 = "0.1.0"
	// VersionV2 is the X-Prometheus-Remote-Write-Version of 2.0 requests.
	VersionV2 = "2.0.0"
)

// Encoder turns a batch of points into a snappy-compressed Remote Write body.
// It reuses its buffers: the returned body is valid until the next Encode call,
// and an Encoder must not be used by more than one goroutine at a time.
type Encoder struct {
	gen      *Generator
	protocol Protocol
	metadata bool

	v1     prompb.WriteRequest
	v1Lbls []prompb.Label
	v1Smp  []prompb.Sample
	v1Ex   []prompb.Exemplar
	seen   []uint32 // per family: the request number it was last described in
	reqNum uint32

	v2     writev2.Request
	v2Syms writev2.SymbolsTable
	v2Refs []uint32
	v2Smp  []writev2.Sample
	v2Ex   []writev2.Exemplar

	raw  []byte
	body []byte
}

// NewEncoder returns an encoder for protocol p; withMetadata adds metric metadata.
func NewEncoder(g *Generator, p Protocol, withMetadata bool) (*Encoder, error) {
	np := p.normalize()
	if np == "" {
		return nil, fmt.Errorf("protocol: unknown value %q; use 1.0 or 2.0", p)
	}
	return &Encoder{
		gen: g, protocol: np, metadata: withMetadata,
		seen:   make([]uint32, g.NumFamilies()),
		v2Syms: writev2.NewSymbolTable(),
	}, nil
}

// Encode encodes points into a compressed request body.
func (e *Encoder) Encode(points []Point) ([]byte, error) {
	var size int
	var marshal func([]byte) (int, error)
	if e.protocol == ProtocolV2 {
		e.buildV2(points)
		size, marshal = e.v2.Size(), e.v2.MarshalToSizedBuffer
	} else {
		e.buildV1(points)
		size, marshal = e.v1.Size(), e.v1.MarshalToSizedBuffer
	}
	if cap(e.raw) < size {
		e.raw = make([]byte, size)
	}
	n, err := marshal(e.raw[:size])
	if err != nil {
		return nil, fmt.Errorf("marshal %s request: %w", e.protocol, err)
	}
	raw := e.raw[size-n : size]
	if need := snappy.MaxEncodedLen(len(raw)); cap(e.body) < need {
		e.body = make([]byte, need)
	}
	e.body = snappy.Encode(e.body[:cap(e.body)], raw)
	return e.body, nil
}

// buildV1 fills e.v1 from points, reusing the label/sample/exemplar arenas.
func (e *Encoder) buildV1(points []Point) {
	e.reqNum++
	req := &e.v1
	req.Timeseries = growTo(req.Timeseries, len(points))
	req.Metadata = req.Metadata[:0]
	e.v1Lbls, e.v1Smp, e.v1Ex = e.v1Lbls[:0], e.v1Smp[:0], e.v1Ex[:0]
	for i := range points {
		p := &points[i]
		ts := &req.Timeseries[i]
		*ts = prompb.TimeSeries{}
		start := len(e.v1Lbls)
		p.Labels.Range(func(l labels.Label) {
			e.v1Lbls = append(e.v1Lbls, prompb.Label{Name: l.Name, Value: l.Value})
		})
		ts.Labels = e.v1Lbls[start:len(e.v1Lbls):len(e.v1Lbls)]
		if p.Histogram != nil {
			ts.Histograms = []prompb.Histogram{prompb.FromIntHistogram(p.Timestamp, p.Histogram)}
		} else {
			e.v1Smp = append(e.v1Smp, prompb.Sample{Value: p.Value, Timestamp: p.Timestamp})
			ts.Samples = e.v1Smp[len(e.v1Smp)-1 : len(e.v1Smp) : len(e.v1Smp)]
		}
		if x := p.Exemplar; x != nil {
			start := len(e.v1Lbls)
			x.Labels.Range(func(l labels.Label) {
				e.v1Lbls = append(e.v1Lbls, prompb.Label{Name: l.Name, Value: l.Value})
			})
			e.v1Ex = append(e.v1Ex, prompb.Exemplar{
				Labels: e.v1Lbls[start:len(e.v1Lbls):len(e.v1Lbls)], Value: x.Value, Timestamp: x.Ts,
			})
			ts.Exemplars = e.v1Ex[len(e.v1Ex)-1 : len(e.v1Ex) : len(e.v1Ex)]
		}
		if e.metadata && e.seen[p.Family] != e.reqNum {
			e.seen[p.Family] = e.reqNum
			md := e.gen.FamilyMetadata(p.Family)
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{
				Type:             prompb.FromMetadataType(md.Type),
				MetricFamilyName: e.gen.Family(p.Family),
				Help:             md.Help,
				Unit:             md.Unit,
			})
		}
	}
}

// buildV2 fills e.v2 from points with a fresh symbol table, reusing the arenas.
func (e *Encoder) buildV2(points []Point) {
	req := &e.v2
	e.v2Syms.Reset()
	req.Timeseries = growTo(req.Timeseries, len(points))
	e.v2Refs, e.v2Smp, e.v2Ex = e.v2Refs[:0], e.v2Smp[:0], e.v2Ex[:0]
	for i := range points {
		p := &points[i]
		ts := &req.Timeseries[i]
		*ts = writev2.TimeSeries{}
		start := len(e.v2Refs)
		e.appendRefs(p.Labels)
		ts.LabelsRefs = e.v2Refs[start:len(e.v2Refs):len(e.v2Refs)]
		if p.Histogram != nil {
			ts.Histograms = []writev2.Histogram{writev2.FromIntHistogram(0, p.Timestamp, p.Histogram)}
		} else {
			e.v2Smp = append(e.v2Smp, writev2.Sample{Value: p.Value, Timestamp: p.Timestamp})
			ts.Samples = e.v2Smp[len(e.v2Smp)-1 : len(e.v2Smp) : len(e.v2Smp)]
		}
		if x := p.Exemplar; x != nil {
			start := len(e.v2Refs)
			e.appendRefs(x.Labels)
			e.v2Ex = append(e.v2Ex, writev2.Exemplar{
				LabelsRefs: e.v2Refs[start:len(e.v2Refs):len(e.v2Refs)], Value: x.Value, Timestamp: x.Ts,
			})
			ts.Exemplars = e.v2Ex[len(e.v2Ex)-1 : len(e.v2Ex) : len(e.v2Ex)]
		}
		if e.metadata {
			md := e.gen.FamilyMetadata(p.Family)
			ts.Metadata = writev2.Metadata{
				Type:    writev2.FromMetadataType(md.Type),
				HelpRef: e.v2Syms.Symbolize(md.Help),
				UnitRef: e.v2Syms.Symbolize(md.Unit),
			}
		}
	}
	req.Symbols = e.v2Syms.Symbols()
}

// appendRefs appends the symbol references of ls to e.v2Refs.
func (e *Encoder) appendRefs(ls labels.Labels) {
	ls.Range(func(l labels.Label) {
		e.v2Refs = append(e.v2Refs, e.v2Syms.Symbolize(l.Name), e.v2Syms.Symbolize(l.Value))
	})
}

// growTo returns s resized to n elements, reusing its backing array when possible.
func growTo[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
