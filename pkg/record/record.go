// Package record is the series batch promgov moves from a distributor to
// an ingester, keeps in the ingester's write-ahead log and forwards from
// it: the one form of a series between the edge and the backend.
//
// A batch is a sequence of entries, one per series:
//
//	entry  := hash flags samples histograms exemplars size series
//	hash   := 8 bytes, little endian: labels.Labels.Hash() of the series
//	flags  := 1 byte (FlagExtras)
//	samples, histograms, exemplars, size := uvarint
//	series := size bytes: a Remote Write 1.0 prometheus.TimeSeries in wire
//	          form (labels sorted by name, valid, __name__ present), plus, when
//	          flags has FlagExtras, what only Remote Write 2.0 can say:
//	          per-series metadata (field 15, MetadataField), start timestamps
//	          of samples (Sample field 3) and histograms (Histogram field 17)
//
// Why this form: labels travel as strings, so batches are merged by
// concatenation and split by slicing, never re-symbolised; a series
// without extras is sent to a Remote Write 1.0 backend byte for byte (a
// 1.0 WriteRequest is its series, each behind a tag and a length); a 2.0
// backend gets one symbol table per forwarded request, built once at send
// time (V2Encoder). The hash lets the ingester's cardinality tracking and
// the forwarder's sharding skip re-hashing the labels.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// FlagExtras marks a series carrying data Remote Write 1.0 has no field
// for (see the package documentation); a 1.0 encoder must strip it.
const FlagExtras byte = 1

// Field numbers of prometheus.TimeSeries (Remote Write 1.0) and of the one
// field promgov adds to it.
const (
	fieldLabels     = 1
	fieldSamples    = 2
	fieldExemplars  = 3
	fieldHistograms = 4
	// MetadataField holds a series' Remote Write 2.0 metadata: a message
	// of type (1, varint, the writev2.Metadata_MetricType value), help (2)
	// and unit (3).
	MetadataField = 15
)

// The field numbers a package decoding validated series itself needs
// (pkg/aggregate): the top-level fields and those of a sample.
const (
	FieldLabels      = fieldLabels
	FieldSamples     = fieldSamples
	FieldExemplars   = fieldExemplars
	FieldHistograms  = fieldHistograms
	FieldSampleValue = fieldSampleValue
	FieldSampleTS    = fieldSampleTS
)

// Field numbers inside the messages of a series.
const (
	fieldLabelName  = 1
	fieldLabelValue = 2

	fieldSampleValue = 1
	fieldSampleTS    = 2
	fieldSampleStart = 3 // Remote Write 2.0 only

	fieldExemplarLabels = 1
	fieldExemplarValue  = 2
	fieldExemplarTS     = 3

	fieldHistogramStart = 17 // Remote Write 2.0 only

	fieldMetaType = 1
	fieldMetaHelp = 2
	fieldMetaUnit = 3
)

// ErrMalformed is wrapped by every error about a batch's encoding.
var ErrMalformed = errors.New("malformed series batch")

// Entry is one series of a batch. Series and Raw alias the batch.
type Entry struct {
	Hash       uint64
	Flags      byte
	Samples    int
	Histograms int
	Exemplars  int
	Series     []byte
	// Raw is the whole entry, header included (set by Iter): appending it
	// to a batch copies the entry.
	Raw []byte
}

// Count is the entry's samples + histograms + exemplars.
func (e *Entry) Count() int { return e.Samples + e.Histograms + e.Exemplars }

// AppendHeader appends an entry's header for a series of size bytes; the
// caller appends exactly size bytes of series next.
func AppendHeader(dst []byte, hash uint64, flags byte, samples, histograms, exemplars, size int) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, hash)
	dst = append(dst, flags)
	dst = protowire.AppendVarint(dst, uint64(samples))
	dst = protowire.AppendVarint(dst, uint64(histograms))
	dst = protowire.AppendVarint(dst, uint64(exemplars))
	return protowire.AppendVarint(dst, uint64(size))
}

// AppendEntry appends e whole.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = AppendHeader(dst, e.Hash, e.Flags, e.Samples, e.Histograms, e.Exemplars, len(e.Series))
	return append(dst, e.Series...)
}

// Iter walks the entries of a batch:
//
//	it := record.NewIter(batch)
//	for it.Next() { e := it.Entry() ... }
//	if err := it.Err(); err != nil { ... }
//
// It checks the framing only (see Entry.Validate for the series).
type Iter struct {
	b     []byte
	total int // len of the whole batch
	e     Entry
	err   error
	n     int
}

// NewIter returns an iterator over batch.
func NewIter(batch []byte) Iter { return Iter{b: batch, total: len(batch)} }

// Offset is where the current entry starts in the batch.
func (it *Iter) Offset() int { return it.total - len(it.b) - len(it.e.Raw) }

// Next advances to the next entry; false at the end or on an error.
func (it *Iter) Next() bool {
	if len(it.b) == 0 || it.err != nil {
		return false
	}
	b := it.b
	if len(b) < 9 {
		it.err = fmt.Errorf("%w: entry %d: truncated header", ErrMalformed, it.n)
		return false
	}
	it.e.Hash = binary.LittleEndian.Uint64(b)
	it.e.Flags = b[8]
	b = b[9:]
	var vals [4]uint64
	for i := range vals {
		if len(b) > 0 && b[0] < 0x80 { // one-byte varints: the common case
			vals[i], b = uint64(b[0]), b[1:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 || v > uint64(len(it.b)) {
			it.err = fmt.Errorf("%w: entry %d: bad header", ErrMalformed, it.n)
			return false
		}
		vals[i], b = v, b[n:]
	}
	if vals[3] > uint64(len(b)) {
		it.err = fmt.Errorf("%w: entry %d: series of %d bytes past the end of the batch", ErrMalformed, it.n, vals[3])
		return false
	}
	it.e.Samples, it.e.Histograms, it.e.Exemplars = int(vals[0]), int(vals[1]), int(vals[2])
	it.e.Series = b[:vals[3]:vals[3]]
	end := len(it.b) - len(b) + int(vals[3])
	it.e.Raw = it.b[:end:end]
	it.b = b[vals[3]:]
	it.n++
	return true
}

// Entry is the current entry, valid until Next is called again.
func (it *Iter) Entry() *Entry { return &it.e }

// Err is the first framing error met, nil at a clean end.
func (it *Iter) Err() error { return it.err }

// Validate checks that e's series is what the package documentation says:
// known fields of the right wire types, labels with a name and a value
// each, a non-empty __name__, counts that match the header, extras only
// with FlagExtras. It returns the metric name (aliasing the batch). The
// content of samples, exemplars and histograms is not decoded: it was
// validated by the distributor that built the entry and is copied as is.
func (e *Entry) Validate() (name []byte, err error) {
	var samples, histograms, exemplars int
	b := e.Series
	for len(b) > 0 {
		var num protowire.Number
		var v, rest []byte
		if protowire.Type(b[0]&7) == protowire.BytesType { // a tag's first byte holds its wire type
			num, v, rest = nextField(b)
		}
		if num == 0 {
			return nil, fieldError(b)
		}
		b = rest
		switch num {
		case fieldLabels:
			ln, lv, err := ParseLabel(v)
			if err != nil {
				return nil, err
			}
			if string(ln) == "__name__" {
				name = lv
			}
		case fieldSamples:
			samples++
		case fieldExemplars:
			exemplars++
		case fieldHistograms:
			histograms++
		case MetadataField:
			if e.Flags&FlagExtras == 0 {
				return nil, fmt.Errorf("%w: metadata without the extras flag", ErrMalformed)
			}
		default:
			return nil, fmt.Errorf("%w: unknown series field %d", ErrMalformed, num)
		}
	}
	if len(name) == 0 {
		return nil, fmt.Errorf("%w: series without __name__", ErrMalformed)
	}
	if samples != e.Samples || histograms != e.Histograms || exemplars != e.Exemplars {
		return nil, fmt.Errorf("%w: header counts %d/%d/%d, series has %d/%d/%d", ErrMalformed,
			e.Samples, e.Histograms, e.Exemplars, samples, histograms, exemplars)
	}
	return name, nil
}

// fieldError describes why the series field at the start of b is not a
// well-formed length-delimited field.
func fieldError(b []byte) error {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
	}
	if typ != protowire.BytesType {
		return fmt.Errorf("%w: field %d has wire type %d", ErrMalformed, num, typ)
	}
	if _, m := protowire.ConsumeBytes(b[n:]); m < 0 {
		return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
	}
	return fmt.Errorf("%w: field %d", ErrMalformed, num)
}

// parseLabel splits a Label message into its name and value. The name must
// not be empty.
// ParseLabel decodes one labels field's message (name 1, value 2); name and
// value alias b. Unknown fields and an empty name are errors
// (ErrMalformed).
func ParseLabel(b []byte) (name, value []byte, err error) {
	// The encoding AppendLabel writes, with short strings: two bytes of
	// header each.
	if len(b) >= 4 && b[0] == fieldLabelName<<3|2 && b[1] > 0 && b[1] < 0x80 {
		n := int(b[1])
		if len(b) >= 4+n && b[2+n] == fieldLabelValue<<3|2 && b[3+n] < 0x80 && len(b) == 4+n+int(b[3+n]) {
			return b[2 : 2+n], b[4+n:], nil
		}
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return nil, nil, fmt.Errorf("%w: bad label field", ErrMalformed)
		}
		b = b[n:]
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return nil, nil, fmt.Errorf("%w: truncated label", ErrMalformed)
		}
		b = b[m:]
		switch num {
		case fieldLabelName:
			name = v
		case fieldLabelValue:
			value = v
		default:
			return nil, nil, fmt.Errorf("%w: unknown label field %d", ErrMalformed, num)
		}
	}
	if len(name) == 0 {
		return nil, nil, fmt.Errorf("%w: label without a name", ErrMalformed)
	}
	return name, value, nil
}

// field is one top-level field of a (validated) series.
type field struct {
	num protowire.Number
	v   []byte
}

// fields calls fn for every length-delimited field of a validated series
// (or of any message made of length-delimited fields only).
func fields(b []byte, fn func(f field)) {
	for len(b) > 0 {
		num, v, rest := nextField(b)
		if num == 0 {
			return
		}
		b = rest
		fn(field{num, v})
	}
}

// nextField splits the first field of b off as a length-delimited one
// (whatever its wire type says, as the callers of a validated series
// want): its number, payload and what follows. num is 0 when b is
// malformed. The short form, a one-byte tag and length, is decoded inline.
func nextField(b []byte) (num protowire.Number, v, rest []byte) {
	if len(b) >= 2 {
		t, l := b[0], int(b[1])
		if t >= 1<<3 && t < 0x80 && l < 0x80 && l <= len(b)-2 {
			return protowire.Number(t >> 3), b[2 : 2+l], b[2+l:]
		}
	}
	return nextFieldLong(b)
}

// nextFieldLong is nextField for any tag and length.
func nextFieldLong(b []byte) (num protowire.Number, v, rest []byte) {
	num, _, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, nil, nil
	}
	b = b[n:]
	v, m := protowire.ConsumeBytes(b)
	if m < 0 {
		return 0, nil, nil
	}
	return num, v, b[m:]
}
