package remotewrite

import (
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

// Field numbers Scan reads besides those decodeV1 names.
const (
	fieldV2Symbols = 4 // Request.symbols

	fieldV2SeriesLabels     = 1 // TimeSeries.labels_refs
	fieldV2SeriesSamples    = 2
	fieldV2SeriesHistograms = 3
	fieldV2SeriesExemplars  = 4
	fieldV2SeriesMetadata   = 5

	fieldSampleStart = 3 // Sample.start_timestamp (2.0)

	fieldV2MetaType = 1
	fieldV2MetaHelp = 3
	fieldV2MetaUnit = 4
)

// ScannedSeries is one series of a request as Scan sees it, without
// decoding it. Slices alias the payload or the Scanner's buffers and are
// valid until the callback returns.
type ScannedSeries struct {
	// Index is the series' position among the request's series.
	Index int
	// Raw is the series' whole field in the payload (tag, length, message).
	Raw []byte
	// Simple reports whether the series takes the fast path: float
	// samples only, every field known and well-typed, every reference in
	// range. Only then are the fields below set.
	Simple bool
	// Key is the series' labels as pkg/record label fields: for 1.0 the
	// label fields as sent (order included), for 2.0 rendered from the
	// symbols. Two series with equal keys have equal labels; decoding,
	// validation and the rules are pure functions of it.
	Key []byte
	// Samples are the series' sample fields, each ready to be appended to
	// a pkg/record series (the Sample message is the same in 1.0 and 2.0).
	Samples [][]byte
	// StartTimestamps reports a 2.0 sample with a start timestamp.
	StartTimestamps bool
	// Meta is the series' 2.0 metadata (zero for 1.0).
	Meta ScannedMeta
}

// ScannedMeta is a 2.0 series' metadata, strings aliasing the payload.
type ScannedMeta struct {
	Type       int32 // writev2.Metadata_MetricType
	Help, Unit []byte
}

// Present reports whether there is any metadata.
func (m *ScannedMeta) Present() bool { return m.Type != 0 || len(m.Help) > 0 || len(m.Unit) > 0 }

// Scanner walks remote write payloads without decoding them, for the
// distributor's fast path: series whose key it has seen are placed from
// what it remembers, the rest go through Decoder.DecodePayload. A Scanner
// is used by one request at a time; reuse it (pool it) between requests.
type Scanner struct {
	payload []byte
	symbols []span // 2.0 symbols in the payload
	series  []span // 2.0 series fields in the payload, in order
	hasMeta bool   // the 1.0 payload carries metadata
	refs    []uint32
	key     []byte
	samples [][]byte
	s       ScannedSeries
	// Bounds of a series the fast path takes (the decoder's limits): a
	// larger one is the decoder's to refuse, and never costs the scanner
	// more than these.
	maxLabels, maxLabelField int
}

// span is a slice of the payload.
type span struct{ off, end uint32 }

func (sc *Scanner) symbol(i uint32) []byte {
	s := sc.symbols[i]
	return sc.payload[s.off:s.end]
}

// maxKeptScan bounds the buffers a Scanner keeps between requests.
const maxKeptScan = 1 << 20

// Reset drops buffers a large request grew, so that a pooled Scanner does
// not pin them.
func (sc *Scanner) Reset() {
	if cap(sc.symbols)*8 > maxKeptScan || cap(sc.series)*8 > maxKeptScan {
		sc.symbols, sc.series = nil, nil
	}
	if cap(sc.refs)*4 > maxKeptScan || cap(sc.key) > maxKeptScan || cap(sc.samples)*24 > maxKeptScan {
		sc.refs, sc.key, sc.samples = nil, nil, nil
	}
	clear(sc.samples[:cap(sc.samples)])
	sc.payload, sc.s = nil, ScannedSeries{}
}

// Scan calls fn for every series of payload, in order. It returns false
// when the payload is not what the fast path can read: a malformed wire
// format, more series than the decoder's limit allows, or a 2.0 symbol
// table not starting with "". The caller then decodes the whole payload
// (DecodePayload), which names the problem exactly as it always has.
func (sc *Scanner) Scan(d *Decoder, proto Protocol, payload []byte, fn func(*ScannedSeries)) bool {
	if uint64(len(payload)) >= 1<<32 {
		return false
	}
	sc.payload, sc.symbols, sc.series, sc.hasMeta = payload, sc.symbols[:0], sc.series[:0], false
	limit := 0
	sc.maxLabels, sc.maxLabelField = 1<<16, 1<<16
	if lim := d.validation.lim; lim != nil {
		limit = lim.seriesPerRequest
		if lim.labelsPerSeries > 0 {
			sc.maxLabels = lim.labelsPerSeries
		}
		if lim.labelNameLength > 0 && lim.labelValueLength > 0 {
			sc.maxLabelField = lim.labelNameLength + lim.labelValueLength + 16
		}
	}
	n := 0
	for b := payload; len(b) > 0; {
		num, typ, tn, end := nextField(b)
		if end < 0 {
			return false
		}
		field, v := b[:end], b[tn:end]
		b = b[end:]
		if typ != protowire.BytesType {
			if (proto == ProtocolV1 && (num == fieldWriteTimeseries || num == fieldWriteMetadata)) ||
				(proto == ProtocolV2 && (num == fieldV2Symbols || num == fieldV2Timeseries)) {
				return false
			}
			continue
		}
		v, _ = protowire.ConsumeBytes(v)
		switch {
		case proto == ProtocolV1 && num == fieldWriteTimeseries, proto == ProtocolV2 && num == fieldV2Timeseries:
			if n++; limit > 0 && n > limit {
				return false
			}
			if proto == ProtocolV2 {
				sc.series = append(sc.series, sc.spanOf(field))
				continue
			}
			if !sc.scanV1(n-1, field, v, fn) {
				return false
			}
		case proto == ProtocolV1 && num == fieldWriteMetadata:
			sc.hasMeta = true
		case proto == ProtocolV2 && num == fieldV2Symbols:
			sc.symbols = append(sc.symbols, sc.spanOf(v))
		}
	}
	if proto != ProtocolV2 {
		return true
	}
	if len(sc.symbols) > 0 && sc.symbols[0].off != sc.symbols[0].end {
		return false
	}
	for i, sp := range sc.series {
		field := payload[sp.off:sp.end]
		_, _, tn := protowire.ConsumeTag(field)
		v, _ := protowire.ConsumeBytes(field[tn:])
		if !sc.scanV2(i, field, v, fn) {
			return false
		}
	}
	return true
}

// nextField splits the first field off b: its number and type, the
// length of its tag and of the whole field; fn < 0 when b does not start
// with a well-formed field. A length-delimited field with a one-byte tag
// and length (most fields of a series) takes a short path.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, tn, fn int) {
	if len(b) >= 2 && b[0] >= 8 && b[0] < 0x80 && b[0]&7 == byte(protowire.BytesType) && b[1] < 0x80 {
		if n := 2 + int(b[1]); n <= len(b) {
			return protowire.Number(b[0] >> 3), protowire.BytesType, 1, n
		}
		return 0, 0, -1, -1
	}
	num, typ, tn = protowire.ConsumeTag(b)
	if tn < 0 {
		return 0, 0, -1, -1
	}
	vn := protowire.ConsumeFieldValue(num, typ, b[tn:])
	if vn < 0 {
		return 0, 0, -1, -1
	}
	return num, typ, tn, tn + vn
}

// spanOf locates b (a slice of the payload) in the payload.
func (sc *Scanner) spanOf(b []byte) span {
	off := uint32(cap(sc.payload) - cap(b))
	return span{off, off + uint32(len(b))}
}

// begin resets the series record for series i.
func (sc *Scanner) begin(i int, raw []byte) *ScannedSeries {
	sc.key, sc.samples = sc.key[:0], sc.samples[:0]
	sc.s = ScannedSeries{Index: i, Raw: raw, Simple: true}
	return &sc.s
}

// scanV1 reads one 1.0 TimeSeries; false on a malformed wire format.
func (sc *Scanner) scanV1(i int, raw, b []byte, fn func(*ScannedSeries)) bool {
	s := sc.begin(i, raw)
	labels := 0
	for len(b) > 0 {
		num, typ, tn, end := nextField(b)
		if end < 0 {
			return false
		}
		field := b[:end]
		b = b[end:]
		if typ != protowire.BytesType {
			s.Simple = false
			continue
		}
		switch num {
		case fieldSeriesLabels:
			if labels++; labels > sc.maxLabels || len(field) > sc.maxLabelField {
				s.Simple = false
			}
			if s.Simple {
				sc.key = append(sc.key, field...)
			}
		case fieldSeriesSamples:
			if !simpleSample(field[tn:], false) {
				s.Simple = false
			}
			if s.Simple {
				sc.samples = append(sc.samples, field)
			}
		default: // exemplars, histograms, unknown fields: the decoder's job
			s.Simple = false
		}
	}
	sc.finish(s)
	fn(s)
	return true
}

// scanV2 reads one 2.0 TimeSeries; false on a malformed wire format.
func (sc *Scanner) scanV2(i int, raw, b []byte, fn func(*ScannedSeries)) bool {
	s := sc.begin(i, raw)
	sc.refs = sc.refs[:0]
	for len(b) > 0 {
		num, typ, tn, end := nextField(b)
		if end < 0 {
			return false
		}
		field := b[:end]
		b = b[end:]
		switch {
		case num == fieldV2SeriesLabels && typ == protowire.VarintType:
			r, _ := protowire.ConsumeVarint(field[tn:])
			if r > 1<<32-1 || len(sc.refs) >= 2*sc.maxLabels {
				s.Simple = false
			}
			if s.Simple {
				sc.refs = append(sc.refs, uint32(r))
			}
		case num == fieldV2SeriesLabels && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(field[tn:])
			for len(v) > 0 {
				r, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return false
				}
				if r > 1<<32-1 || len(sc.refs) >= 2*sc.maxLabels {
					s.Simple = false
				}
				if s.Simple {
					sc.refs = append(sc.refs, uint32(r))
				}
				v = v[n:]
			}
		case num == fieldV2SeriesSamples && typ == protowire.BytesType:
			if !simpleSample(field[tn:], true) {
				s.Simple = false
			} else if hasStart(field[tn:]) {
				s.StartTimestamps = true
			}
			if s.Simple {
				sc.samples = append(sc.samples, field)
			}
		case num == fieldV2SeriesMetadata && typ == protowire.BytesType:
			if !sc.meta(field[tn:], s) {
				s.Simple = false
			}
		default: // histograms, exemplars, unknown fields: the decoder's job
			s.Simple = false
		}
	}
	if s.Simple {
		if len(sc.refs)%2 != 0 {
			s.Simple = false
		}
		for j := 0; s.Simple && j+1 < len(sc.refs); j += 2 {
			n, v := sc.refs[j], sc.refs[j+1]
			if int(n) >= len(sc.symbols) || int(v) >= len(sc.symbols) {
				s.Simple = false
				break
			}
			name, value := sc.symbol(n), sc.symbol(v)
			if len(name)+len(value)+16 > sc.maxLabelField {
				s.Simple = false
				break
			}
			sc.key = appendLabelField(sc.key, name, value)
		}
	}
	sc.finish(s)
	fn(s)
	return true
}

// finish sets the fields only a simple series has.
func (sc *Scanner) finish(s *ScannedSeries) {
	if !s.Simple || len(sc.samples) == 0 {
		s.Simple = false
		s.Key, s.Samples, s.Meta, s.StartTimestamps = nil, nil, ScannedMeta{}, false
		return
	}
	s.Key, s.Samples = sc.key, sc.samples
}

// meta reads a 2.0 Metadata message into s.Meta; false when the fast path
// cannot take it (a reference out of range, a unit that is not UTF-8, an
// unexpected field).
func (sc *Scanner) meta(b []byte, s *ScannedSeries) bool {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return false
	}
	for len(v) > 0 {
		num, typ, tn := protowire.ConsumeTag(v)
		if tn < 0 || typ != protowire.VarintType {
			return false
		}
		x, xn := protowire.ConsumeVarint(v[tn:])
		if xn < 0 {
			return false
		}
		v = v[tn+xn:]
		switch num {
		case fieldV2MetaType:
			s.Meta.Type = int32(x)
		case fieldV2MetaHelp, fieldV2MetaUnit:
			if x >= uint64(len(sc.symbols)) {
				return false
			}
			if num == fieldV2MetaHelp {
				s.Meta.Help = sc.symbol(uint32(x))
			} else {
				s.Meta.Unit = sc.symbol(uint32(x))
				if !utf8.Valid(s.Meta.Unit) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// simpleSample reports whether a Sample field's message (length-prefixed)
// has only well-typed value and timestamp fields (and, in 2.0, a start
// timestamp).
func simpleSample(b []byte, v2 bool) bool {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return false
	}
	// What every sender sends: value then timestamp, one-byte tags.
	if len(v) >= 10 && v[0] == 0x09 && v[9] == 0x10 {
		if _, xn := protowire.ConsumeVarint(v[10:]); xn > 0 && 10+xn == len(v) {
			return true
		}
	}
	for len(v) > 0 {
		num, typ, tn := protowire.ConsumeTag(v)
		if tn < 0 {
			return false
		}
		switch {
		case num == fieldSampleValue && typ == protowire.Fixed64Type:
			if len(v) < tn+8 {
				return false
			}
			v = v[tn+8:]
		case (num == fieldSampleTimestamp || (v2 && num == fieldSampleStart)) && typ == protowire.VarintType:
			_, xn := protowire.ConsumeVarint(v[tn:])
			if xn < 0 {
				return false
			}
			v = v[tn+xn:]
		default:
			return false
		}
	}
	return true
}

// hasStart reports whether a (simple) 2.0 Sample carries a non-zero start
// timestamp.
func hasStart(b []byte) bool {
	v, _ := protowire.ConsumeBytes(b)
	for len(v) > 0 {
		num, typ, tn := protowire.ConsumeTag(v)
		if typ == protowire.Fixed64Type {
			v = v[tn+8:]
			continue
		}
		x, xn := protowire.ConsumeVarint(v[tn:])
		if num == fieldSampleStart && x != 0 {
			return true
		}
		v = v[tn+xn:]
	}
	return false
}

// appendLabelField appends one label as a pkg/record label field.
func appendLabelField(dst, name, value []byte) []byte {
	return record.AppendLabel(dst, unsafeString(name), unsafeString(value))
}

// SubRequest appends to dst a payload of the same protocol carrying what
// the scanned payload carries besides series (1.0 metadata, 2.0 symbols)
// and the series whose Raw fields are given, in that order, for
// DecodePayload.
func (sc *Scanner) SubRequest(dst []byte, proto Protocol, series [][]byte) []byte {
	keep := protowire.Number(fieldWriteMetadata)
	if proto == ProtocolV2 {
		keep = fieldV2Symbols
	}
	for b := sc.payload; len(b) > 0; {
		num, typ, tn := protowire.ConsumeTag(b)
		if tn < 0 {
			break
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[tn:])
		if vn < 0 {
			break
		}
		if num == keep && typ == protowire.BytesType {
			dst = append(dst, b[:tn+vn]...)
		}
		b = b[tn+vn:]
	}
	for _, f := range series {
		dst = append(dst, f...)
	}
	return dst
}

// HasMetadata reports whether the 1.0 payload scanned carried metadata.
func (sc *Scanner) HasMetadata() bool { return sc.hasMeta }

// unsafeString views b as a string without copying; valid while b is.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// HasMetadataV1 reports whether a 1.0 payload carries family metadata
// (a malformed payload reports false).
func HasMetadataV1(payload []byte) bool {
	for b := payload; len(b) > 0; {
		num, typ, tn := protowire.ConsumeTag(b)
		if tn < 0 {
			return false
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[tn:])
		if vn < 0 {
			return false
		}
		if num == fieldWriteMetadata {
			return true
		}
		b = b[tn+vn:]
	}
	return false
}
