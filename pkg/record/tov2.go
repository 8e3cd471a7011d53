package record

import (
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
	syms    map[string]uint32
	symBuf  []byte
	series  []byte
	refs    []uint32
	idx     MetaIndex
	meta    []prompb.MetricMetadata
	used    map[*prompb.MetricMetadata]struct{}
	out     []byte
	entries int
}

// Reset starts a request carrying the family metadata meta.
func (v *V2Encoder) Reset(meta []prompb.MetricMetadata) {
	if v.syms == nil {
		v.syms = make(map[string]uint32)
	}
	clear(v.syms)
	v.syms[""] = 0
	v.symBuf = appendStringField(v.symBuf[:0], fieldV2Symbols, "")
	v.series, v.meta, v.entries = v.series[:0], meta, 0
	v.idx = nil
	if len(meta) > 0 {
		v.idx = NewMetaIndex(meta)
	}
	clear(v.used)
}

func (v *V2Encoder) symbol(b []byte) uint32 {
	if r, ok := v.syms[unsafeString(b)]; ok {
		return r
	}
	r := uint32(len(v.syms))
	v.syms[unsafeString(b)] = r
	v.symBuf = appendBytesField(v.symBuf, fieldV2Symbols, b)
	return r
}

func (v *V2Encoder) symbolString(s string) uint32 {
	if r, ok := v.syms[s]; ok {
		return r
	}
	r := uint32(len(v.syms))
	v.syms[s] = r
	v.symBuf = appendStringField(v.symBuf, fieldV2Symbols, s)
	return r
}

// appendRefs appends labels (Label fields of msg) as a packed refs field.
func (v *V2Encoder) appendRefs(dst []byte, num protowire.Number, msg []byte) []byte {
	v.refs = v.refs[:0]
	ForEachLabel(msg, func(name, value []byte) {
		v.refs = append(v.refs, v.symbol(name), v.symbol(value))
	})
	if len(v.refs) == 0 {
		return dst
	}
	size := 0
	for _, r := range v.refs {
		size += protowire.SizeVarint(uint64(r))
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	for _, r := range v.refs {
		dst = protowire.AppendVarint(dst, uint64(r))
	}
	return dst
}

// Add appends e's series.
func (v *V2Encoder) Add(e *Entry) {
	v.entries++
	var md seriesMeta
	hasMeta := false
	fields(e.Series, func(f field) {
		if f.num == MetadataField {
			md, hasMeta = parseMeta(f.v), true
		}
	})
	var meta *prompb.MetricMetadata
	if v.idx != nil {
		if m := v.idx.Lookup(unsafeString(MetricName(e.Series))); m != nil {
			if v.used == nil {
				v.used = make(map[*prompb.MetricMetadata]struct{})
			}
			v.used[m] = struct{}{}
			if !hasMeta || !md.present() {
				meta = m
			}
		}
	}
	split := e.Samples > 0 && e.Histograms > 0
	v.series = appendMessage(v.series, fieldV2Timeseries, func(b []byte) []byte {
		return v.appendSeries(b, e.Series, &md, meta, true, !split)
	})
	if split {
		v.series = appendMessage(v.series, fieldV2Timeseries, func(b []byte) []byte {
			return v.appendSeries(b, e.Series, &md, meta, false, true)
		})
	}
}

// appendSeries appends one TimeSeries: labels, samples and exemplars when
// floats, histograms when hists, and metadata (its own, else meta).
func (v *V2Encoder) appendSeries(dst, series []byte, md *seriesMeta, meta *prompb.MetricMetadata, floats, hists bool) []byte {
	dst = v.appendRefs(dst, fieldV2Labels, series)
	fields(series, func(f field) {
		switch f.num {
		case fieldSamples:
			if floats {
				dst = appendBytesField(dst, fieldV2Samples, f.v)
			}
		case fieldHistograms:
			if hists {
				dst = appendBytesField(dst, fieldV2Histograms, f.v)
			}
		case fieldExemplars:
			if floats {
				dst = appendMessage(dst, fieldV2Exemplars, func(b []byte) []byte {
					b = v.appendRefs(b, fieldV2ExemplarLabels, f.v)
					for rest := f.v; len(rest) > 0; {
						num, _, n := consumeField(rest)
						if n < 0 {
							break
						}
						if num != fieldExemplarLabels {
							b = append(b, rest[:n]...) // value (2) and timestamp (3) keep their numbers
						}
						rest = rest[n:]
					}
					return b
				})
			}
		}
	})
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

// Len is the number of entries added since Reset.
func (v *V2Encoder) Len() int { return v.entries }

// Bytes returns the Request: its symbols, then its series. Valid until the
// next Reset.
func (v *V2Encoder) Bytes() []byte {
	v.out = append(append(v.out[:0], v.symBuf...), v.series...)
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
