package remotewrite

import (
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// v1Converter holds the arenas of one 1.0 → 2.0 conversion; per-series
// slices are cut from them.
type v1Converter struct {
	labelRefs    []uint32
	samples      []writev2.Sample
	exemplars    []writev2.Exemplar
	exemplarRefs []uint32
	histograms   []writev2.Histogram
	spans        []writev2.BucketSpan
}

func (c *v1Converter) convertSpans(in []prompb.BucketSpan) []writev2.BucketSpan {
	if len(in) == 0 {
		return nil
	}
	start := len(c.spans)
	for _, s := range in {
		c.spans = append(c.spans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	end := len(c.spans)
	return c.spans[start:end:end]
}

func (c *v1Converter) convertHistograms(in []prompb.Histogram) []writev2.Histogram {
	if len(in) == 0 {
		return nil
	}
	start := len(c.histograms)
	for i := range in {
		c.histograms = append(c.histograms, c.convertHistogram(&in[i]))
	}
	end := len(c.histograms)
	return c.histograms[start:end:end]
}

// convertHistogram copies a 1.0 native histogram field by field. The 1.0
// and 2.0 reset hint enums share their numeric values.
func (c *v1Converter) convertHistogram(h *prompb.Histogram) writev2.Histogram {
	out := writev2.Histogram{
		Sum:            h.Sum,
		Schema:         h.Schema,
		ZeroThreshold:  h.ZeroThreshold,
		NegativeSpans:  c.convertSpans(h.NegativeSpans),
		NegativeDeltas: h.NegativeDeltas,
		NegativeCounts: h.NegativeCounts,
		PositiveSpans:  c.convertSpans(h.PositiveSpans),
		PositiveDeltas: h.PositiveDeltas,
		PositiveCounts: h.PositiveCounts,
		ResetHint:      writev2.Histogram_ResetHint(h.ResetHint),
		Timestamp:      h.Timestamp,
		CustomValues:   h.CustomValues,
	}
	switch v := h.Count.(type) {
	case *prompb.Histogram_CountInt:
		out.Count = &writev2.Histogram_CountInt{CountInt: v.CountInt}
	case *prompb.Histogram_CountFloat:
		out.Count = &writev2.Histogram_CountFloat{CountFloat: v.CountFloat}
	}
	switch v := h.ZeroCount.(type) {
	case *prompb.Histogram_ZeroCountInt:
		out.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: v.ZeroCountInt}
	case *prompb.Histogram_ZeroCountFloat:
		out.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: v.ZeroCountFloat}
	}
	return out
}
