package forward

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
)

const metricNameLabel = "__name__"

// hasMetadata reports whether a 2.0 series carries metadata of its own.
func hasMetadata(m writev2.Metadata) bool {
	return m.Type != writev2.Metadata_METRIC_TYPE_UNSPECIFIED || m.HelpRef != 0 || m.UnitRef != 0
}

// symbol resolves ref against symbols.
func symbol(symbols []string, ref uint32) (string, error) {
	if int(ref) >= len(symbols) {
		return "", fmt.Errorf("symbol reference %d out of range (%d symbols): %w", ref, len(symbols), ErrInvalidBatch)
	}
	return symbols[ref], nil
}

// checkRefs validates that refs are name/value pairs inside symbols.
func checkRefs(refs []uint32, symbols []string) error {
	if len(refs)%2 != 0 {
		return fmt.Errorf("odd number of label references (%d): %w", len(refs), ErrInvalidBatch)
	}
	for _, r := range refs {
		if int(r) >= len(symbols) {
			return fmt.Errorf("label reference %d out of range (%d symbols): %w", r, len(symbols), ErrInvalidBatch)
		}
	}
	return nil
}

// metricName returns the __name__ of a series given its label refs; refs
// must have been checked.
func metricName(refs []uint32, symbols []string) string {
	for i := 0; i+1 < len(refs); i += 2 {
		if symbols[refs[i]] == metricNameLabel {
			return symbols[refs[i+1]]
		}
	}
	return ""
}

// take carves the next n elements off *buf (nil when n is 0).
func take[T any](buf *[]T, n int) []T {
	if n == 0 {
		return nil
	}
	out := (*buf)[:n:n]
	*buf = (*buf)[n:]
	return out
}

// v1Arena preallocates every slice a ToV1 result needs, so converting a
// request costs a handful of allocations instead of several per series.
type v1Arena struct {
	labels    []prompb.Label
	samples   []prompb.Sample
	hists     []prompb.Histogram
	exemplars []prompb.Exemplar
	spans     []prompb.BucketSpan
}

func newV1Arena(req *writev2.Request) *v1Arena {
	var nl, ns, nh, ne, nsp int
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		nl += len(ts.LabelsRefs) / 2
		ns += len(ts.Samples)
		nh += len(ts.Histograms)
		ne += len(ts.Exemplars)
		for j := range ts.Exemplars {
			nl += len(ts.Exemplars[j].LabelsRefs) / 2
		}
		for j := range ts.Histograms {
			nsp += len(ts.Histograms[j].NegativeSpans) + len(ts.Histograms[j].PositiveSpans)
		}
	}
	return &v1Arena{
		labels:    make([]prompb.Label, nl),
		samples:   make([]prompb.Sample, ns),
		hists:     make([]prompb.Histogram, nh),
		exemplars: make([]prompb.Exemplar, ne),
		spans:     make([]prompb.BucketSpan, nsp),
	}
}

// labels converts label refs into prompb labels.
func (a *v1Arena) labelsOf(refs []uint32, symbols []string) ([]prompb.Label, error) {
	if err := checkRefs(refs, symbols); err != nil {
		return nil, err
	}
	out := take(&a.labels, len(refs)/2)
	for i := range out {
		out[i] = prompb.Label{Name: symbols[refs[2*i]], Value: symbols[refs[2*i+1]]}
	}
	return out, nil
}

// histogram copies a 2.0 histogram field by field. start_timestamp has no
// 1.0 field and is dropped.
func (a *v1Arena) histogram(h *writev2.Histogram, out *prompb.Histogram) {
	*out = prompb.Histogram{
		Sum:            h.Sum,
		Schema:         h.Schema,
		ZeroThreshold:  h.ZeroThreshold,
		NegativeDeltas: h.NegativeDeltas,
		NegativeCounts: h.NegativeCounts,
		PositiveDeltas: h.PositiveDeltas,
		PositiveCounts: h.PositiveCounts,
		ResetHint:      prompb.Histogram_ResetHint(h.ResetHint),
		Timestamp:      h.Timestamp,
		CustomValues:   h.CustomValues,
	}
	switch c := h.Count.(type) {
	case *writev2.Histogram_CountInt:
		out.Count = &prompb.Histogram_CountInt{CountInt: c.CountInt}
	case *writev2.Histogram_CountFloat:
		out.Count = &prompb.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch z := h.ZeroCount.(type) {
	case *writev2.Histogram_ZeroCountInt:
		out.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: z.ZeroCountInt}
	case *writev2.Histogram_ZeroCountFloat:
		out.ZeroCount = &prompb.Histogram_ZeroCountFloat{ZeroCountFloat: z.ZeroCountFloat}
	}
	out.NegativeSpans = a.spansOf(h.NegativeSpans)
	out.PositiveSpans = a.spansOf(h.PositiveSpans)
}

func (a *v1Arena) spansOf(in []writev2.BucketSpan) []prompb.BucketSpan {
	out := take(&a.spans, len(in))
	for i, s := range in {
		out[i] = prompb.BucketSpan{Offset: s.Offset, Length: s.Length}
	}
	return out
}

// ToV1 converts a 2.0 request plus RW 1.0 family metadata into a 1.0
// WriteRequest: labels and exemplar labels are resolved from the symbol
// table, samples and histograms are copied field by field (start timestamps
// are dropped: 1.0 has no field for them), and per-series metadata becomes
// WriteRequest.Metadata, deduplicated per family (record.FamilyName). Entries of
// meta come first and win over metadata derived from series. Slices of req
// may be shared with the result.
func ToV1(req *writev2.Request, meta []prompb.MetricMetadata) (*prompb.WriteRequest, error) {
	out := &prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, 0, len(req.Timeseries))}
	idx := record.NewMetaIndex(meta)
	for i := range meta {
		if idx[meta[i].MetricFamilyName] == &meta[i] {
			out.Metadata = append(out.Metadata, meta[i])
		}
	}
	var seen map[string]struct{}
	arena := newV1Arena(req)
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		lbls, err := arena.labelsOf(ts.LabelsRefs, req.Symbols)
		if err != nil {
			return nil, fmt.Errorf("series %d: %w", i, err)
		}
		v1 := prompb.TimeSeries{Labels: lbls}
		v1.Samples = take(&arena.samples, len(ts.Samples))
		for j, s := range ts.Samples {
			v1.Samples[j] = prompb.Sample{Value: s.Value, Timestamp: s.Timestamp}
		}
		v1.Histograms = take(&arena.hists, len(ts.Histograms))
		for j := range ts.Histograms {
			arena.histogram(&ts.Histograms[j], &v1.Histograms[j])
		}
		v1.Exemplars = take(&arena.exemplars, len(ts.Exemplars))
		for j, e := range ts.Exemplars {
			el, err := arena.labelsOf(e.LabelsRefs, req.Symbols)
			if err != nil {
				return nil, fmt.Errorf("series %d exemplar %d: %w", i, j, err)
			}
			v1.Exemplars[j] = prompb.Exemplar{Labels: el, Value: e.Value, Timestamp: e.Timestamp}
		}
		out.Timeseries = append(out.Timeseries, v1)

		if !hasMetadata(ts.Metadata) {
			continue
		}
		name := metricName(ts.LabelsRefs, req.Symbols)
		if name == "" || idx.Lookup(name) != nil {
			continue
		}
		fam := record.FamilyName(name, ts.Metadata.Type)
		if _, ok := seen[fam]; ok {
			continue
		}
		help, err := symbol(req.Symbols, ts.Metadata.HelpRef)
		if err != nil {
			return nil, fmt.Errorf("series %d help: %w", i, err)
		}
		unit, err := symbol(req.Symbols, ts.Metadata.UnitRef)
		if err != nil {
			return nil, fmt.Errorf("series %d unit: %w", i, err)
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		seen[fam] = struct{}{}
		out.Metadata = append(out.Metadata, prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_MetricType(ts.Metadata.Type),
			MetricFamilyName: fam,
			Help:             help,
			Unit:             unit,
		})
	}
	return out, nil
}

// attachMetadata returns req with family metadata copied onto every series
// of a matching family that has no metadata of its own, and the entries of
// meta that matched no series in req. req itself is never modified: when
// anything is attached a shallow copy with extended symbols is returned.
func attachMetadata(req *writev2.Request, meta []prompb.MetricMetadata) (*writev2.Request, []prompb.MetricMetadata, error) {
	if len(meta) == 0 {
		return req, nil, nil
	}
	idx := record.NewMetaIndex(meta)
	used := make(map[*prompb.MetricMetadata]struct{}, len(meta))
	var (
		out     *writev2.Request
		added   map[string]uint32
		symbols []string
	)
	symbolize := func(s string) uint32 {
		if s == "" {
			return 0
		}
		if r, ok := added[s]; ok {
			return r
		}
		r := uint32(len(symbols))
		symbols = append(symbols, s)
		added[s] = r
		return r
	}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		if err := checkRefs(ts.LabelsRefs, req.Symbols); err != nil {
			return nil, nil, fmt.Errorf("series %d: %w", i, err)
		}
		m := idx.Lookup(metricName(ts.LabelsRefs, req.Symbols))
		if m == nil {
			continue
		}
		used[m] = struct{}{}
		if hasMetadata(ts.Metadata) {
			continue
		}
		if out == nil {
			symbols = append(req.Symbols[:len(req.Symbols):len(req.Symbols)], make([]string, 0, 2*len(meta))...)
			if len(symbols) == 0 {
				symbols = append(symbols, "")
			}
			added = make(map[string]uint32, 2*len(meta))
			out = &writev2.Request{Timeseries: append([]writev2.TimeSeries(nil), req.Timeseries...)}
		}
		out.Timeseries[i].Metadata = writev2.Metadata{
			Type:    writev2.Metadata_MetricType(m.Type),
			HelpRef: symbolize(m.Help),
			UnitRef: symbolize(m.Unit),
		}
	}
	var left []prompb.MetricMetadata
	for i := range meta {
		m := &meta[i]
		if idx[m.MetricFamilyName] != m {
			continue // duplicate family
		}
		if _, ok := used[m]; !ok {
			left = append(left, *m)
		}
	}
	if out == nil {
		return req, left, nil
	}
	out.Symbols = symbols
	return out, left, nil
}
