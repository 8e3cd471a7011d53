package record

import (
	"strings"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// FamilyName returns the metric family a series named metricName belongs to,
// given the series' metadata type. It strips a suffix only where the type
// says the suffix is not part of the family name:
//
//   - COUNTER: "_total"
//   - HISTOGRAM, GAUGEHISTOGRAM: "_bucket", "_sum", "_count"
//   - SUMMARY: "_sum", "_count"
//
// Every other name is returned unchanged (native histograms carry no suffix).
func FamilyName(metricName string, typ writev2.Metadata_MetricType) string {
	var suffixes []string
	switch typ {
	case writev2.Metadata_METRIC_TYPE_COUNTER:
		suffixes = []string{"_total"}
	case writev2.Metadata_METRIC_TYPE_HISTOGRAM, writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM:
		suffixes = []string{"_bucket", "_sum", "_count"}
	case writev2.Metadata_METRIC_TYPE_SUMMARY:
		suffixes = []string{"_sum", "_count"}
	}
	for _, s := range suffixes {
		if base, ok := strings.CutSuffix(metricName, s); ok && base != "" {
			return base
		}
	}
	return metricName
}

// MetaIndex indexes Remote Write 1.0 family metadata by family name (the
// first entry of a family wins).
type MetaIndex map[string]*prompb.MetricMetadata

// NewMetaIndex indexes meta; the index points into meta.
func NewMetaIndex(meta []prompb.MetricMetadata) MetaIndex {
	idx := make(MetaIndex, len(meta))
	for i := range meta {
		if _, ok := idx[meta[i].MetricFamilyName]; !ok {
			idx[meta[i].MetricFamilyName] = &meta[i]
		}
	}
	return idx
}

// Lookup finds the family metadata for a series called name: an exact
// family match, or a family whose type explains name's suffix.
func (idx MetaIndex) Lookup(name string) *prompb.MetricMetadata {
	if len(idx) == 0 {
		return nil
	}
	if m, ok := idx[name]; ok {
		return m
	}
	for _, s := range [...]string{"_total", "_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, s)
		if !ok {
			continue
		}
		if m, ok := idx[base]; ok && FamilyName(name, writev2.Metadata_MetricType(m.Type)) == base {
			return m
		}
	}
	return nil
}

// seriesMeta is the Remote Write 2.0 metadata a series carries in
// MetadataField.
type seriesMeta struct {
	typ        writev2.Metadata_MetricType
	help, unit []byte
}

func (m *seriesMeta) present() bool {
	return m.typ != writev2.Metadata_METRIC_TYPE_UNSPECIFIED || len(m.help) > 0 || len(m.unit) > 0
}

// parseMeta decodes a MetadataField message; unknown fields are ignored.
// MetaType returns the type of a MetadataField message (unspecified when
// it has none).
func MetaType(b []byte) writev2.Metadata_MetricType { return parseMeta(b).typ }

func parseMeta(b []byte) seriesMeta {
	var m seriesMeta
	for len(b) > 0 {
		num, typ, n := consumeField(b)
		if n < 0 {
			break
		}
		v := b[:n]
		b = b[n:]
		switch {
		case num == fieldMetaType && typ == 0:
			x, _ := consumeVarintValue(v)
			m.typ = writev2.Metadata_MetricType(x)
		case num == fieldMetaHelp && typ == 2:
			m.help = bytesValue(v)
		case num == fieldMetaUnit && typ == 2:
			m.unit = bytesValue(v)
		}
	}
	return m
}
