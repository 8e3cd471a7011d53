package aggregate

import (
	"encoding/binary"
	"math"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of a record series (pkg/record: a Remote Write 1.0
// TimeSeries plus the metadata field).
const (
	fieldLabels     = 1
	fieldSamples    = 2
	fieldExemplars  = 3
	fieldHistograms = 4
	fieldMetadata   = 15

	fieldLabelName  = 1
	fieldLabelValue = 2

	fieldSampleValue = 1
	fieldSampleTS    = 2

	fieldMetaType = 1
)

// sample is one float sample.
type sample struct {
	v float64
	t int64
}

// label is one label of a parsed series, aliasing it.
type label struct{ name, value []byte }

// parsed is a series of a validated record entry, decoded into scratch
// slices that are reused between series.
type parsed struct {
	labels    []label
	samples   []sample
	hists     [][]byte // prompb.Histogram messages
	exemplars int
	typ       writev2.Metadata_MetricType
	overflow  []string // labels set to __overflow__ (the overflow rule)
}

// value returns the value of label name ("" when absent).
func (p *parsed) value(name string) ([]byte, bool) {
	for _, l := range p.labels {
		if string(l.name) == name {
			return l.value, true
		}
	}
	return nil, false
}

// parse decodes a series (validated by record.Entry.Validate); it reports
// false when a sample or label is malformed.
func (p *parsed) parse(series []byte) bool {
	p.labels, p.samples, p.hists = p.labels[:0], p.samples[:0], p.hists[:0]
	p.exemplars, p.typ = 0, writev2.Metadata_METRIC_TYPE_UNSPECIFIED
	b := series
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return false
		}
		b = b[m:]
		switch num {
		case fieldLabels:
			l, ok := parseLabel(v)
			if !ok {
				return false
			}
			p.labels = append(p.labels, l)
		case fieldSamples:
			s, ok := parseSample(v)
			if !ok {
				return false
			}
			p.samples = append(p.samples, s)
		case fieldHistograms:
			p.hists = append(p.hists, v)
		case fieldExemplars:
			p.exemplars++
		case fieldMetadata:
			p.typ = parseMetaType(v)
		}
	}
	return true
}

func parseLabel(b []byte) (label, bool) {
	var l label
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return l, false
		}
		b = b[n:]
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return l, false
		}
		b = b[m:]
		switch num {
		case fieldLabelName:
			l.name = v
		case fieldLabelValue:
			l.value = v
		}
	}
	return l, len(l.name) > 0
}

func parseSample(b []byte) (sample, bool) {
	var s sample
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return s, false
		}
		b = b[n:]
		switch {
		case num == fieldSampleValue && typ == protowire.Fixed64Type:
			if len(b) < 8 {
				return s, false
			}
			s.v = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case num == fieldSampleTS && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return s, false
			}
			s.t = int64(v)
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return s, false
			}
			b = b[m:]
		}
	}
	return s, true
}

func parseMetaType(b []byte) writev2.Metadata_MetricType {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == fieldMetaType && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(b)
			return writev2.Metadata_MetricType(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0
		}
		b = b[m:]
	}
	return 0
}
