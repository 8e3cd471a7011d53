package remotewrite

import (
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// v1Sizes counts the elements of a V1 request so conversion can carve every
// per-series slice out of a few shared arenas.
type v1Sizes struct {
	series, labelRefs, samples, exemplars, exemplarRefs, histograms, spans int
}

func sizeV1(req *prompb.WriteRequest) v1Sizes {
	var s v1Sizes
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		s.series++
		if len(ts.Samples) > 0 && len(ts.Histograms) > 0 {
			s.series++ // split into a sample series and a histogram series
		}
		s.labelRefs += 2 * len(ts.Labels)
		s.samples += len(ts.Samples)
		s.exemplars += len(ts.Exemplars)
		for j := range ts.Exemplars {
			s.exemplarRefs += 2 * len(ts.Exemplars[j].Labels)
		}
		s.histograms += len(ts.Histograms)
		for j := range ts.Histograms {
			s.spans += len(ts.Histograms[j].NegativeSpans) + len(ts.Histograms[j].PositiveSpans)
		}
	}
	return s
}

// convertV1 is the reference the production decoder (decodeV1) is held to
// by FuzzDecodeV1MatchesReference: it converts a Remote Write 1.0 request into the internal 2.0 form.
// Labels and exemplar labels are symbolized in the order sent (validation
// checks the order afterwards). A 1.0 series carrying both samples and
// histograms becomes two 2.0 series with the same labels, because 2.0 forbids
// both in one series; exemplars stay with the sample series. Bucket
// delta/count/custom-value slices are shared with req, which the caller
// discards. Family metadata is not attached to series.
func convertV1(req *prompb.WriteRequest) writev2.Request {
	sz := sizeV1(req)
	symbols := writev2.NewSymbolTable()
	c := refConverter{symbols: &symbols, v1Converter: v1Converter{
		labelRefs:    make([]uint32, 0, sz.labelRefs),
		samples:      make([]writev2.Sample, 0, sz.samples),
		exemplars:    make([]writev2.Exemplar, 0, sz.exemplars),
		exemplarRefs: make([]uint32, 0, sz.exemplarRefs),
		histograms:   make([]writev2.Histogram, 0, sz.histograms),
		spans:        make([]writev2.BucketSpan, 0, sz.spans),
	}}
	series := make([]writev2.TimeSeries, 0, sz.series)
	for i := range req.Timeseries {
		in := &req.Timeseries[i]
		refs := c.symbolizeLabels(in.Labels, &c.labelRefs)
		ts := writev2.TimeSeries{
			LabelsRefs: refs,
			Samples:    c.convertSamples(in.Samples),
			Exemplars:  c.convertExemplars(in.Exemplars),
		}
		hs := c.convertHistograms(in.Histograms)
		if len(ts.Samples) > 0 && len(hs) > 0 {
			series = append(series, ts, writev2.TimeSeries{LabelsRefs: refs, Histograms: hs})
			continue
		}
		ts.Histograms = hs
		series = append(series, ts)
	}
	return writev2.Request{Symbols: symbols.Symbols(), Timeseries: series}
}

// refConverter adds the reference's symbol table to the shared arenas.
type refConverter struct {
	v1Converter
	symbols *writev2.SymbolsTable
}

func (c *refConverter) symbolizeLabels(ls []prompb.Label, arena *[]uint32) []uint32 {
	if len(ls) == 0 {
		return nil
	}
	start := len(*arena)
	for _, l := range ls {
		*arena = append(*arena, c.symbols.Symbolize(l.Name), c.symbols.Symbolize(l.Value))
	}
	end := len(*arena)
	return (*arena)[start:end:end]
}

func (c *refConverter) convertSamples(in []prompb.Sample) []writev2.Sample {
	if len(in) == 0 {
		return nil
	}
	start := len(c.samples)
	for _, s := range in {
		c.samples = append(c.samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp})
	}
	end := len(c.samples)
	return c.samples[start:end:end]
}

func (c *refConverter) convertExemplars(in []prompb.Exemplar) []writev2.Exemplar {
	if len(in) == 0 {
		return nil
	}
	start := len(c.exemplars)
	for i := range in {
		e := &in[i]
		c.exemplars = append(c.exemplars, writev2.Exemplar{
			LabelsRefs: c.symbolizeLabels(e.Labels, &c.exemplarRefs),
			Value:      e.Value,
			Timestamp:  e.Timestamp,
		})
	}
	end := len(c.exemplars)
	return c.exemplars[start:end:end]
}
