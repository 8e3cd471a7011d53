package record

import (
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of prometheus.WriteRequest and prometheus.MetricMetadata.
const (
	fieldV1Timeseries = 1
	fieldV1Metadata   = 3

	fieldMDType   = 1
	fieldMDFamily = 2
	fieldMDHelp   = 4
	fieldMDUnit   = 5
)

// V1Encoder renders entries as one Remote Write 1.0 WriteRequest. A series
// without extras is copied as it is; one with extras loses what 1.0 cannot
// say (start timestamps) and its metadata becomes family metadata, once per
// family, unless the family metadata given to Reset already covers it, as
// forward.ToV1 does. Not safe for concurrent use; reuse it with Reset.
type V1Encoder struct {
	buf     []byte
	derived []byte
	idx     MetaIndex
	meta    []prompb.MetricMetadata
	seen    map[string]struct{}
	n       int // metadata entries written
}

// Reset starts a request carrying the family metadata meta.
func (v *V1Encoder) Reset(meta []prompb.MetricMetadata) {
	v.buf, v.derived, v.meta, v.n = v.buf[:0], v.derived[:0], meta, 0
	v.idx = nil
	if len(meta) > 0 {
		v.idx = NewMetaIndex(meta)
	}
	clear(v.seen)
}

// Add appends e's series.
func (v *V1Encoder) Add(e *Entry) {
	if e.Flags&FlagExtras == 0 {
		v.buf = appendBytesField(v.buf, fieldV1Timeseries, e.Series)
		return
	}
	var md seriesMeta
	v.buf = appendMessage(v.buf, fieldV1Timeseries, func(b []byte) []byte {
		fields(e.Series, func(f field) {
			switch f.num {
			case fieldSamples:
				b = appendMessage(b, fieldSamples, func(b []byte) []byte { return appendWithout(b, f.v, fieldSampleStart) })
			case fieldHistograms:
				b = appendMessage(b, fieldHistograms, func(b []byte) []byte { return appendWithout(b, f.v, fieldHistogramStart) })
			case MetadataField:
				md = parseMeta(f.v)
			default:
				b = appendBytesField(b, f.num, f.v)
			}
		})
		return b
	})
	if md.present() {
		v.deriveMeta(e.Series, &md)
	}
}

// deriveMeta records a series' metadata as family metadata.
func (v *V1Encoder) deriveMeta(series []byte, md *seriesMeta) {
	name := unsafeString(MetricName(series))
	if name == "" || v.idx.Lookup(name) != nil {
		return
	}
	fam := FamilyName(name, md.typ)
	if _, ok := v.seen[fam]; ok {
		return
	}
	if v.seen == nil {
		v.seen = make(map[string]struct{})
	}
	v.seen[fam] = struct{}{}
	v.derived = appendMetadata(v.derived, int32(md.typ), fam, unsafeString(md.help), unsafeString(md.unit))
	v.n++
}

// Metadata is the number of metadata entries Bytes writes.
func (v *V1Encoder) Metadata() int {
	n := v.n
	for i := range v.meta {
		if v.idx[v.meta[i].MetricFamilyName] == &v.meta[i] {
			n++
		}
	}
	return n
}

// Bytes returns the WriteRequest: the series added, then the family
// metadata given to Reset (first of each family), then the metadata derived
// from series. Valid until the next Reset.
func (v *V1Encoder) Bytes() []byte {
	for i := range v.meta {
		m := &v.meta[i]
		if v.idx[m.MetricFamilyName] == m {
			v.buf = appendMetadata(v.buf, int32(m.Type), m.MetricFamilyName, m.Help, m.Unit)
		}
	}
	v.buf = append(v.buf, v.derived...)
	v.derived = v.derived[:0]
	v.meta, v.idx = nil, nil
	return v.buf
}

// appendMetadata appends one WriteRequest.metadata entry.
func appendMetadata(dst []byte, typ int32, family, help, unit string) []byte {
	return appendMessage(dst, fieldV1Metadata, func(b []byte) []byte {
		b = appendUvarintField(b, fieldMDType, uint64(typ))
		if family != "" {
			b = appendStringField(b, fieldMDFamily, family)
		}
		if help != "" {
			b = appendStringField(b, fieldMDHelp, help)
		}
		if unit != "" {
			b = appendStringField(b, fieldMDUnit, unit)
		}
		return b
	})
}

// appendWithout appends every field of msg but those numbered num.
func appendWithout(dst, msg []byte, num protowire.Number) []byte {
	for len(msg) > 0 {
		n2, _, n := consumeField(msg)
		if n < 0 {
			return append(dst, msg...)
		}
		if n2 != num {
			dst = append(dst, msg[:n]...)
		}
		msg = msg[n:]
	}
	return dst
}
