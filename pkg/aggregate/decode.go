package aggregate

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/prometheus/common/model"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
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
	// newestT caches newest() once newestOK.
	newestT  int64
	newestOK bool
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

// name is the series' metric name, viewing the parsed series: valid while
// it is (copy it to keep it).
func (p *parsed) name() string {
	v, _ := p.value(model.MetricNameLabel)
	return unsafe.String(unsafe.SliceData(v), len(v))
}

// parse decodes a series (validated by record.Entry.Validate); it reports
// false when a sample or label is malformed.
func (p *parsed) parse(series []byte) bool {
	p.labels, p.samples, p.hists = p.labels[:0], p.samples[:0], p.hists[:0]
	p.exemplars, p.typ, p.newestOK = 0, writev2.Metadata_METRIC_TYPE_UNSPECIFIED, false
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
		case record.FieldLabels:
			name, value, err := record.ParseLabel(v)
			if err != nil {
				return false
			}
			p.labels = append(p.labels, label{name: name, value: value})
		case record.FieldSamples:
			s, ok := parseSample(v)
			if !ok {
				return false
			}
			p.samples = append(p.samples, s)
		case record.FieldHistograms:
			p.hists = append(p.hists, v)
		case record.FieldExemplars:
			p.exemplars++
		case record.MetadataField:
			p.typ = record.MetaType(v)
		}
	}
	return true
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
		case num == record.FieldSampleValue && typ == protowire.Fixed64Type:
			if len(b) < 8 {
				return s, false
			}
			s.v = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case num == record.FieldSampleTS && typ == protowire.VarintType:
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
