package remotewrite

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the Remote Write 1.0 messages (prompb remote.proto and
// types.proto) that decodeV1 reads directly.
const (
	fieldWriteTimeseries = 1 // WriteRequest.timeseries
	fieldWriteMetadata   = 3 // WriteRequest.metadata

	fieldSeriesLabels     = 1 // TimeSeries.labels
	fieldSeriesSamples    = 2 // TimeSeries.samples
	fieldSeriesExemplars  = 3 // TimeSeries.exemplars
	fieldSeriesHistograms = 4 // TimeSeries.histograms

	fieldLabelName  = 1 // Label.name
	fieldLabelValue = 2 // Label.value

	fieldSampleValue     = 1 // Sample.value (double)
	fieldSampleTimestamp = 2 // Sample.timestamp (int64)

	fieldExemplarLabels    = 1 // Exemplar.labels
	fieldExemplarValue     = 2 // Exemplar.value (double)
	fieldExemplarTimestamp = 3 // Exemplar.timestamp (int64)
)

// WireError reports a payload that breaks the protobuf wire format itself
// (a truncated field, an invalid field number, an unterminated or mismatched
// group, an overlong varint). gogo's generated decoder tolerates some of
// these inside unknown fields; decodeV1 does not, and answers them 400 like
// any other malformed body.
type WireError struct{ Err error }

func (e *WireError) Error() string { return "malformed protobuf: " + e.Err.Error() }
func (e *WireError) Unwrap() error { return e.Err }

func wireError(code int) error { return &WireError{Err: protowire.ParseError(code)} }

// errTruncated is returned for a payload that ends inside a field.
var errTruncated = &WireError{Err: errors.New("unexpected end of message")}

// decodeV1 parses a marshalled prometheus.WriteRequest straight into the
// internal 2.0 form. It produces what gogo's Unmarshal followed by convertV1
// produces (the differential fuzz test holds it to that), without
// materialising a 1.0 request: each label string is interned from the
// payload bytes, so a string is allocated only the first time it appears in
// the request (label and metric names, in a reused v1Decoder, only the
// first time it sees them: internKept). Histograms and metadata, which are rare, are decoded with the
// generated code and converted as before. The result does not alias payload.
//
// lim (nil: unbounded) is applied while decoding: a series over a bound is
// decoded only as far as needed to name it (an over-long string is never
// interned, labels past the bound are not kept) and its problem is returned
// in pre by series index for validateRequest. More series than the bound
// allows is a *LimitError before the rest is decoded.
func decodeV1(payload []byte, lim *limits) (req writev2.Request, meta []prompb.MetricMetadata, pre map[int]problem, err error) {
	var d v1Decoder
	req, meta, pre, _, err = d.decode(payload, lim, false)
	return req, meta, pre, err
}

// decode is decodeV1 on d's tables and arenas, which it empties first:
// what it returns aliases them until d's next decode. With track, it also
// returns the index of the request's series each decoded series came from
// (a series with both samples and histograms gives two).
func (d *v1Decoder) decode(payload []byte, lim *limits, track bool) (req writev2.Request, meta []prompb.MetricMetadata, pre map[int]problem, origin []int32, err error) {
	d.reset(len(payload))
	d.lim = lim
	d.intern(nil) // symbols[0] is the empty string, as 2.0 requires
	var nSeries int
	series, origin := d.series[:0], d.origin[:0]
	err = eachField(payload, func(num protowire.Number, typ protowire.Type, b []byte) error {
		switch num {
		case fieldWriteTimeseries:
			if typ != protowire.BytesType {
				return wrongType("WriteRequest.timeseries", typ)
			}
			if nSeries++; lim != nil && over(nSeries, lim.seriesPerRequest) {
				return lim.tooManySeries(nSeries)
			}
			var err error
			before := len(series)
			series, err = d.decodeSeries(b, series)
			for range len(series) - before {
				if track {
					origin = append(origin, int32(nSeries-1))
				}
			}
			return err
		case fieldWriteMetadata:
			if typ != protowire.BytesType {
				return wrongType("WriteRequest.metadata", typ)
			}
			var m prompb.MetricMetadata
			if err := m.Unmarshal(b); err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			meta = append(meta, m)
		}
		return nil
	})
	d.series, d.origin = series, origin
	if err != nil {
		return writev2.Request{}, nil, nil, nil, err
	}
	if !track {
		origin = nil
	}
	return writev2.Request{Symbols: d.symbols, Timeseries: series}, meta, d.pre, origin, nil
}

// maxKeptDecode bounds, in bytes, each arena a v1Decoder keeps from one
// decode to the next, so that one huge request does not pin its memory.
const maxKeptDecode = 1 << 20

// reset empties d for a payload of n bytes, keeping its tables and arenas
// (up to maxKeptDecode bytes each) for reuse.
func (d *v1Decoder) reset(n int) {
	// Rough capacities from the payload size (a label pair costs at least
	// ~8 bytes on the wire and a sample ~11), capped so that a payload of a
	// few huge series does not reserve room for millions.
	refs, samples := min(n/8, maxArenaGuess), min(n/64, maxArenaGuess)
	if d.index == nil || len(d.index) > maxKeptDecode/32 {
		d.index = make(map[string]uint32, 64)
	} else {
		clear(d.index)
	}
	d.pre, d.prob, d.nLabels = nil, problem{}, 0
	d.symbols = reuse(d.symbols, 0)
	d.series = reuse(d.series, 0)
	d.origin = reuse(d.origin, 0)
	d.c = v1Converter{
		labelRefs:    reuse(d.c.labelRefs, refs),
		samples:      reuse(d.c.samples, samples),
		exemplars:    reuse(d.c.exemplars, 0),
		exemplarRefs: reuse(d.c.exemplarRefs, 0),
		histograms:   reuse(d.c.histograms, 0),
		spans:        reuse(d.c.spans, 0),
	}
	d.hist = reuse(d.hist, 0)
}

// reuse empties s when its backing array is at most maxKeptDecode bytes,
// and gives a new one of capacity guess (nil for 0) otherwise. Arenas are
// only ever appended to, so clearing what was used is enough for s to
// hold on to nothing of the last request.
func reuse[T any](s []T, guess int) []T {
	var zero T
	if s != nil && uintptr(cap(s))*unsafe.Sizeof(zero) <= maxKeptDecode {
		clear(s)
		return s[:0]
	}
	if guess == 0 {
		return nil
	}
	return make([]T, 0, guess)
}

// maxArenaGuess caps the initial arena capacities guessed from the payload
// size; past it the arenas grow as they fill.
const maxArenaGuess = 1 << 14

// v1Decoder holds the interning table and the arenas of one request; the
// zero value is ready to use, and decode reuses them for the next one.
type v1Decoder struct {
	lim     *limits
	pre     map[int]problem // problems found while decoding, by series index
	prob    problem         // the first problem of the series being decoded
	nLabels int             // labels of the series being decoded
	index   map[string]uint32
	names   map[string]string // kept across decodes (internKept)
	// namesBytes is roughly what names holds.
	namesBytes int
	symbols    []string
	series     []writev2.TimeSeries
	origin     []int32
	c          v1Converter
	hist       []prompb.Histogram // reused per series
}

func (d *v1Decoder) intern(b []byte) uint32 {
	return d.internKept(b, false)
}

// maxKeptNameBytes bounds the strings a v1Decoder keeps from one decode
// to the next; past it they are forgotten and kept again as they come.
const maxKeptNameBytes = 256 << 10

// internKept is intern that, with keep, takes the string from (or adds it
// to) the strings kept across decodes: label names and metric names, which
// a sender repeats in every request, so that they are allocated once and
// not once a request. Values, which may be unique to a series, are not
// kept.
func (d *v1Decoder) internKept(b []byte, keep bool) uint32 {
	if ref, ok := d.index[string(b)]; ok { // no allocation for the lookup
		return ref
	}
	var s string
	if keep {
		var ok bool
		if s, ok = d.names[string(b)]; !ok {
			if d.namesBytes+len(b) > maxKeptNameBytes {
				clear(d.names)
				d.namesBytes = 0
			}
			if d.names == nil {
				d.names = make(map[string]string)
			}
			s = string(b)
			d.names[s] = s
			d.namesBytes += len(s) + 32 // the string and its map entry, roughly
		}
	} else {
		s = string(b)
	}
	ref := uint32(len(d.symbols))
	d.index[s] = ref
	d.symbols = append(d.symbols, s)
	return ref
}

// series decodes one TimeSeries and appends its 2.0 form (two series when it
// carries both samples and histograms, as convertV1 does).
func (d *v1Decoder) decodeSeries(b []byte, out []writev2.TimeSeries) ([]writev2.TimeSeries, error) {
	refStart, sampleStart := len(d.c.labelRefs), len(d.c.samples)
	exemplarStart := len(d.c.exemplars)
	d.hist = d.hist[:0]
	d.prob, d.nLabels = problem{}, 0
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case fieldSeriesLabels:
			if typ != protowire.BytesType {
				return wrongType("TimeSeries.labels", typ)
			}
			if d.nLabels++; d.lim != nil && over(d.nLabels, d.lim.labelsPerSeries) {
				// Keep what names the series, count the rest.
				if d.prob.kind == problemNone || d.prob.kind == problemTooManyLabels {
					d.prob = problem{kind: problemTooManyLabels, n1: d.nLabels,
						n2: d.lim.labelsPerSeries, s2: d.lim.labelsFlag}
				}
				return nil
			}
			return d.label(v, &d.c.labelRefs)
		case fieldSeriesSamples:
			if typ != protowire.BytesType {
				return wrongType("TimeSeries.samples", typ)
			}
			s, err := sample(v)
			d.c.samples = append(d.c.samples, s)
			return err
		case fieldSeriesExemplars:
			if typ != protowire.BytesType {
				return wrongType("TimeSeries.exemplars", typ)
			}
			return d.exemplar(v)
		case fieldSeriesHistograms:
			if typ != protowire.BytesType {
				return wrongType("TimeSeries.histograms", typ)
			}
			var h prompb.Histogram
			if err := h.Unmarshal(v); err != nil {
				return fmt.Errorf("histogram: %w", err)
			}
			d.hist = append(d.hist, h)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("timeseries %d: %w", len(out), err)
	}
	ts := writev2.TimeSeries{
		LabelsRefs: capped(d.c.labelRefs, refStart),
		Samples:    capped(d.c.samples, sampleStart),
		Exemplars:  capped(d.c.exemplars, exemplarStart),
	}
	hs := d.c.convertHistograms(d.hist)
	if d.prob.kind != problemNone {
		if d.pre == nil {
			d.pre = map[int]problem{}
		}
		d.pre[len(out)] = d.prob
		if len(ts.Samples) > 0 && len(hs) > 0 {
			d.pre[len(out)+1] = d.prob
		}
	}
	if len(ts.Samples) > 0 && len(hs) > 0 {
		return append(out, ts, writev2.TimeSeries{LabelsRefs: ts.LabelsRefs, Histograms: hs}), nil
	}
	ts.Histograms = hs
	return append(out, ts), nil
}

// label interns one Label's name and value and appends their refs to arena.
func (d *v1Decoder) label(b []byte, arena *[]uint32) error {
	var name, value []byte
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case fieldLabelName, fieldLabelValue:
			if typ != protowire.BytesType {
				return wrongType("Label field", typ)
			}
			if num == fieldLabelName {
				name = v
			} else {
				value = v
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("label: %w", err)
	}
	if p := d.lim.label(len(name), len(value)); p.kind != problemNone {
		// Never intern the over-long string: keep a short stand-in that
		// still lets the error message name the series.
		p.s1 = truncate(string(name[:min(len(name), maxRenderedValue+1)]), maxRenderedValue)
		if d.prob.kind == problemNone {
			d.prob = p
		}
		if len(name) > maxRenderedValue {
			name = []byte(p.s1)
		}
		if len(value) > maxRenderedValue {
			value = []byte(truncate(string(value[:maxRenderedValue+1]), maxRenderedValue))
		}
	}
	*arena = append(*arena, d.internKept(name, true), d.internKept(value, string(name) == metricNameLabel))
	return nil
}

func (d *v1Decoder) exemplar(b []byte) error {
	refStart := len(d.c.exemplarRefs)
	var e writev2.Exemplar
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case fieldExemplarLabels:
			if typ != protowire.BytesType {
				return wrongType("Exemplar.labels", typ)
			}
			return d.label(v, &d.c.exemplarRefs)
		case fieldExemplarValue:
			f, err := fixed64(typ, v, "Exemplar.value")
			e.Value = math.Float64frombits(f)
			return err
		case fieldExemplarTimestamp:
			n, err := varint(typ, v, "Exemplar.timestamp")
			e.Timestamp = int64(n)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("exemplar: %w", err)
	}
	e.LabelsRefs = capped(d.c.exemplarRefs, refStart)
	d.c.exemplars = append(d.c.exemplars, e)
	return nil
}

func sample(b []byte) (writev2.Sample, error) {
	var s writev2.Sample
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case fieldSampleValue:
			f, err := fixed64(typ, v, "Sample.value")
			s.Value = math.Float64frombits(f)
			return err
		case fieldSampleTimestamp:
			n, err := varint(typ, v, "Sample.timestamp")
			s.Timestamp = int64(n)
			return err
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("sample: %w", err)
	}
	return s, nil
}

// eachField calls fn for every field of the message in b, with the field's
// raw value: the payload for length-delimited fields, the encoded bytes for
// the others (decode them with fixed64 or varint). Unknown fields are passed
// to fn too, which ignores them, as proto3 requires.
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			val, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return wireError(m)
			}
			v, n = val, m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return wireError(n)
			}
			v = b[:n]
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func fixed64(typ protowire.Type, v []byte, field string) (uint64, error) {
	if typ != protowire.Fixed64Type {
		return 0, wrongType(field, typ)
	}
	f, n := protowire.ConsumeFixed64(v)
	if n < 0 {
		return 0, errTruncated
	}
	return f, nil
}

func varint(typ protowire.Type, v []byte, field string) (uint64, error) {
	if typ != protowire.VarintType {
		return 0, wrongType(field, typ)
	}
	x, n := protowire.ConsumeVarint(v)
	if n < 0 {
		return 0, errTruncated
	}
	return x, nil
}

func wrongType(field string, typ protowire.Type) error {
	return fmt.Errorf("wrong wire type %d for %s", typ, field)
}

// capped returns arena[start:] with its capacity cut to its length, so an
// append to one series' slice can never write into the next one's.
func capped[T any](arena []T, start int) []T {
	if len(arena) == start {
		return nil
	}
	return arena[start:len(arena):len(arena)]
}
