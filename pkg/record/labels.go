package record

import (
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"
)

// LabelSize is the encoded size of one label field (tag, length, Label).
func LabelSize(name, value string) int {
	inner := labelInnerSize(len(name), len(value))
	return 1 + protowire.SizeVarint(uint64(inner)) + inner
}

func labelInnerSize(name, value int) int {
	return 1 + protowire.SizeVarint(uint64(name)) + name + 1 + protowire.SizeVarint(uint64(value)) + value
}

// AppendLabel appends one label as a series' labels field.
func AppendLabel(dst []byte, name, value string) []byte {
	if inner := 4 + len(name) + len(value); inner < 0x80 {
		// Every length fits in one byte: the common case, without varints.
		dst = append(dst, fieldLabels<<3|2, byte(inner), fieldLabelName<<3|2, byte(len(name)))
		dst = append(dst, name...)
		dst = append(dst, fieldLabelValue<<3|2, byte(len(value)))
		return append(dst, value...)
	}
	dst = append(dst, fieldLabels<<3|2)
	dst = protowire.AppendVarint(dst, uint64(labelInnerSize(len(name), len(value))))
	dst = append(dst, fieldLabelName<<3|2)
	dst = protowire.AppendVarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	dst = append(dst, fieldLabelValue<<3|2)
	dst = protowire.AppendVarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// AppendLabels appends ls (sorted, as labels.Labels always is) as a
// series' labels fields.
func AppendLabels(dst []byte, ls labels.Labels) []byte {
	ls.Range(func(l labels.Label) { dst = AppendLabel(dst, l.Name, l.Value) })
	return dst
}

// LabelsSize is the encoded size of AppendLabels(nil, ls).
func LabelsSize(ls labels.Labels) int {
	n := 0
	ls.Range(func(l labels.Label) { n += LabelSize(l.Name, l.Value) })
	return n
}

// Labels returns the labels of a validated series, built with sb.
func Labels(series []byte, sb *labels.ScratchBuilder) labels.Labels {
	sb.Reset()
	ForEachLabel(series, func(name, value []byte) {
		sb.Add(unsafeString(name), unsafeString(value)) // copied by sb.Labels
	})
	return sb.Labels()
}

// ForEachLabel calls fn with every label of a validated series; the slices
// alias series.
func ForEachLabel(series []byte, fn func(name, value []byte)) {
	for b := series; len(b) > 0; {
		num, v, rest := nextField(b)
		if num == 0 {
			return
		}
		b = rest
		if num != fieldLabels {
			continue
		}
		if name, value, err := ParseLabel(v); err == nil {
			fn(name, value)
		}
	}
}

// nameLabelPrefix starts a Label message whose name is __name__, as
// encoders write it (name first).
const nameLabelPrefix = "\x0a\x08__name__"

// MetricName returns the __name__ of a validated series, aliasing it.
func MetricName(series []byte) []byte {
	b := series
	for len(b) > 0 {
		num, _, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return nil
		}
		b = b[m:]
		if num != fieldLabels {
			continue
		}
		if len(v) > len(nameLabelPrefix) && string(v[:len(nameLabelPrefix)]) == nameLabelPrefix &&
			v[len(nameLabelPrefix)] == fieldLabelValue<<3|2 {
			// The common encoding: name then value, nothing else.
			if val, k := protowire.ConsumeBytes(v[len(nameLabelPrefix)+1:]); k == len(v)-len(nameLabelPrefix)-1 {
				return val
			}
		}
		if name, value, err := ParseLabel(v); err == nil && string(name) == "__name__" {
			return value
		}
	}
	return nil
}

// unsafeString views b as a string without copying; the string is valid as
// long as b is not modified.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// unsafeBytes views s as bytes, which must not be modified.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// FindLabel returns where the value of the label called name starts in
// labels (label fields, as AppendLabels writes them) and its length; ok is
// false when there is no such label.
func FindLabel(labels []byte, name string) (off, n int, ok bool) {
	ForEachLabel(labels, func(ln, lv []byte) {
		if !ok && string(ln) == name {
			off, n, ok = cap(labels)-cap(lv), len(lv), true
		}
	})
	return off, n, ok
}

// metadataInnerSize is the size of a MetadataField message's payload.
func metadataInnerSize(typ int32, help, unit []byte) int {
	n := 0
	if typ != 0 {
		n += 1 + protowire.SizeVarint(uint64(typ))
	}
	if len(help) > 0 {
		n += 1 + protowire.SizeBytes(len(help))
	}
	if len(unit) > 0 {
		n += 1 + protowire.SizeBytes(len(unit))
	}
	return n
}

// MetadataFieldSize is the size of AppendMetadataField's output.
func MetadataFieldSize(typ int32, help, unit []byte) int {
	return 1 + protowire.SizeBytes(metadataInnerSize(typ, help, unit))
}

// AppendMetadataField appends a series' 2.0 metadata as MetadataField (the
// series then needs FlagExtras).
func AppendMetadataField(dst []byte, typ int32, help, unit []byte) []byte {
	dst = protowire.AppendTag(dst, MetadataField, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(metadataInnerSize(typ, help, unit)))
	dst = appendUvarintField(dst, fieldMetaType, uint64(typ))
	if len(help) > 0 {
		dst = appendBytesField(dst, fieldMetaHelp, help)
	}
	if len(unit) > 0 {
		dst = appendBytesField(dst, fieldMetaUnit, unit)
	}
	return dst
}
