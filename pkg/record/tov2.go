package record

import (
	"bytes"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of io.prometheus.write.v2.Request and its messages.
const (
	fieldV2Symbols    = 4
	fieldV2Timeseries = 5

	fieldV2Labels     = 1
	fieldV2Samples    = 2
	fieldV2Histograms = 3
	fieldV2Exemplars  = 4
	fieldV2Metadata   = 5

	fieldV2ExemplarLabels = 1

	fieldV2MetaType = 1
	fieldV2MetaHelp = 3
	fieldV2MetaUnit = 4
)

// V2Encoder renders entries as one Remote Write 2.0 Request, building its
// symbol table as series are added: this is where a batch is symbolised,
// once per request sent. Family metadata given to Reset is attached to the
// series of its family that carry none (as forward's attachMetadata does);
// Left returns the families no series matched. A series with both samples
// and histograms (possible in 1.0) becomes two series. Not safe for
// concurrent use; reuse it with Reset. Strings of the added entries are
// referenced until the next Reset.
type V2Encoder struct {
	syms    symbolTable
	series  []byte
	refs    []uint32    // a series' label references
	exRefs  []uint32    // an exemplar's
	tail    []byte      // a series' fields after its labels
	prev    []prevLabel // the last series' labels, by position
	idx     MetaIndex
	meta    []prompb.MetricMetadata
	used    map[*prompb.MetricMetadata]struct{}
	out     []byte
	entries int
}

// Reset starts a request carrying the family metadata meta.
func (v *V2Encoder) Reset(meta []prompb.MetricMetadata) {
	v.syms.reset()
	v.series, v.meta, v.entries = v.series[:0], meta, 0
	v.prev = v.prev[:0]
	v.idx = nil
	if len(meta) > 0 {
		v.idx = NewMetaIndex(meta)
	}
	clear(v.used)
}

func (v *V2Encoder) symbol(b []byte) uint32 { return v.syms.intern(b) }

func (v *V2Encoder) symbolString(s string) uint32 { return v.syms.intern(unsafeBytes(s)) }

// prevLabel is the label at one position of the last series added, and
// its symbols' references.
type prevLabel struct {
	msg, name         []byte // alias the entry, referenced until Reset
	nameRef, valueRef uint32
}

// labelRefs appends to v.refs the references of the i-th label of a
// series, msg (its Label message). It is first compared with the label at
// the same position of the last series: consecutive series of a batch
// mostly share their label names and most of their values (one target's
// series, one metric's series), and equal bytes cost less than a symbol
// table lookup (BenchmarkEncode).
func (v *V2Encoder) labelRefs(i int, msg []byte) {
	if i == len(v.prev) {
		v.prev = append(v.prev, prevLabel{})
	}
	p := &v.prev[i]
	if p.msg == nil || !bytes.Equal(p.msg, msg) {
		name, value, err := ParseLabel(msg)
		if err != nil {
			return
		}
		if p.msg == nil || !bytes.Equal(p.name, name) {
			p.name, p.nameRef = name, v.symbol(name)
		}
		p.msg, p.valueRef = msg, v.symbol(value)
	}
	v.refs = append(v.refs, p.nameRef, p.valueRef)
}

// appendRefs appends refs as a packed field num.
func appendRefs(dst []byte, num protowire.Number, refs []uint32) []byte {
	if len(refs) == 0 {
		return dst
	}
	return appendMessage(dst, num, func(b []byte) []byte {
		for _, r := range refs {
			switch {
			case r < 1<<7:
				b = append(b, byte(r))
			case r < 1<<14:
				b = append(b, byte(r)|0x80, byte(r>>7))
			default:
				b = protowire.AppendVarint(b, uint64(r))
			}
		}
		return b
	})
}

// Add appends e's series.
func (v *V2Encoder) Add(e *Entry) {
	v.entries++
	var meta *prompb.MetricMetadata // the family's, for a series without its own
	if v.idx != nil {
		if m := v.idx.Lookup(unsafeString(MetricName(e.Series))); m != nil {
			if v.used == nil {
				v.used = make(map[*prompb.MetricMetadata]struct{})
			}
			v.used[m] = struct{}{}
			meta = m
		}
	}
	if e.Flags&FlagExtras == 0 && e.Histograms == 0 && e.Exemplars == 0 && meta == nil {
		if v.appendPlain(e.Series) {
			return
		}
	}
	split := e.Samples > 0 && e.Histograms > 0
	v.series = appendMessage(v.series, fieldV2Timeseries, func(b []byte) []byte {
		return v.appendSeries(b, e.Series, meta, true, !split)
	})
	if split {
		v.series = appendMessage(v.series, fieldV2Timeseries, func(b []byte) []byte {
			return v.appendSeries(b, e.Series, meta, false, true)
		})
	}
}

// appendPlain appends series, which has only labels and samples (no
// extras, histograms or exemplars, and no family metadata to attach), when
// its samples follow its labels: the common case, which the distributor's
// builder produces. A 2.0 Sample keeps the numbers of a 1.0 Sample and
// TimeSeries.samples keeps field 2, so the samples are copied as they are,
// in one piece. It reports false for any other layout, having appended no
// series, which appendSeries then handles; the symbols of the labels it
// read stay interned, as appendSeries would intern them in that order.
func (v *V2Encoder) appendPlain(series []byte) bool {
	v.refs = v.refs[:0]
	labels, samples := 0, -1 // samples: where they start in series
	for b := series; len(b) > 0; {
		num, f, rest := nextField(b)
		switch {
		case num == fieldLabels && samples < 0:
			v.labelRefs(labels, f)
			labels++
		case num == fieldSamples:
			if samples < 0 {
				samples = len(series) - len(b)
			}
		default: // a label after a sample, or malformed
			return false
		}
		b = rest
	}
	v.series = appendMessage(v.series, fieldV2Timeseries, func(b []byte) []byte {
		b = appendRefs(b, fieldV2Labels, v.refs)
		if samples >= 0 {
			b = append(b, series[samples:]...)
		}
		return b
	})
	return true
}

// appendSeries appends one TimeSeries, reading series once: labels,
// samples and exemplars when floats, histograms when hists, and metadata
// (the series' own, else meta). The fields after the labels are gathered
// in v.tail, so labels anywhere in series still come out first.
func (v *V2Encoder) appendSeries(dst, series []byte, meta *prompb.MetricMetadata, floats, hists bool) []byte {
	v.refs, v.tail = v.refs[:0], v.tail[:0]
	var md seriesMeta
	labels := 0
	for b := series; len(b) > 0; {
		num, f, rest := nextField(b)
		if num == 0 {
			break
		}
		b = rest
		switch num {
		case fieldLabels:
			v.labelRefs(labels, f)
			labels++
		case fieldSamples:
			if floats {
				v.tail = appendBytesField(v.tail, fieldV2Samples, f)
			}
		case fieldHistograms:
			if hists {
				v.tail = appendBytesField(v.tail, fieldV2Histograms, f)
			}
		case fieldExemplars:
			if floats {
				v.tail = appendMessage(v.tail, fieldV2Exemplars, func(b []byte) []byte { return v.appendExemplar(b, f) })
			}
		case MetadataField:
			md = parseMeta(f)
		}
	}
	dst = appendRefs(dst, fieldV2Labels, v.refs)
	dst = append(dst, v.tail...)
	switch {
	case md.present():
		dst = appendMessage(dst, fieldV2Metadata, func(b []byte) []byte {
			b = appendUvarintField(b, fieldV2MetaType, uint64(md.typ))
			if len(md.help) > 0 {
				b = appendUvarintField(b, fieldV2MetaHelp, uint64(v.symbol(md.help)))
			}
			if len(md.unit) > 0 {
				b = appendUvarintField(b, fieldV2MetaUnit, uint64(v.symbol(md.unit)))
			}
			return b
		})
	case meta != nil:
		dst = appendMessage(dst, fieldV2Metadata, func(b []byte) []byte {
			b = appendUvarintField(b, fieldV2MetaType, uint64(meta.Type))
			if meta.Help != "" {
				b = appendUvarintField(b, fieldV2MetaHelp, uint64(v.symbolString(meta.Help)))
			}
			if meta.Unit != "" {
				b = appendUvarintField(b, fieldV2MetaUnit, uint64(v.symbolString(meta.Unit)))
			}
			return b
		})
	}
	return dst
}

// appendExemplar appends the fields of a 2.0 Exemplar made of the 1.0
// Exemplar ex: its labels as references, its value (2) and timestamp (3),
// which keep their numbers.
func (v *V2Encoder) appendExemplar(dst, ex []byte) []byte {
	v.exRefs = v.exRefs[:0]
	ForEachLabel(ex, func(name, value []byte) {
		v.exRefs = append(v.exRefs, v.symbol(name), v.symbol(value))
	})
	dst = appendRefs(dst, fieldV2ExemplarLabels, v.exRefs)
	for rest := ex; len(rest) > 0; {
		num, _, n := consumeField(rest)
		if n < 0 {
			break
		}
		if num != fieldExemplarLabels {
			dst = append(dst, rest[:n]...)
		}
		rest = rest[n:]
	}
	return dst
}

// Len is the number of entries added since Reset.
func (v *V2Encoder) Len() int { return v.entries }

// Bytes returns the Request: its symbols, then its series. Valid until the
// next Reset.
func (v *V2Encoder) Bytes() []byte {
	v.out = append(append(v.out[:0], v.syms.enc...), v.series...)
	return v.out
}

// Left returns the family metadata (first of each family) that matched no
// series added, to be delivered as Remote Write 1.0 since 2.0 has no
// family-level metadata.
func (v *V2Encoder) Left() []prompb.MetricMetadata {
	var left []prompb.MetricMetadata
	for i := range v.meta {
		m := &v.meta[i]
		if v.idx[m.MetricFamilyName] != m {
			continue
		}
		if _, ok := v.used[m]; !ok {
			left = append(left, *m)
		}
	}
	return left
}

// ToV2Request decodes a batch into a writev2.Request (with meta attached as
// V2Encoder does), for code that wants the generated types.
func ToV2Request(batch []byte, meta []prompb.MetricMetadata) (*writev2.Request, []prompb.MetricMetadata, error) {
	var v V2Encoder
	v.Reset(meta)
	it := NewIter(batch)
	for it.Next() {
		v.Add(it.Entry())
	}
	if err := it.Err(); err != nil {
		return nil, nil, err
	}
	req := &writev2.Request{}
	if v.Len() == 0 {
		return req, v.Left(), nil
	}
	if err := req.Unmarshal(v.Bytes()); err != nil {
		return nil, nil, err
	}
	return req, v.Left(), nil
}
