package remotewrite

import (
	"unsafe"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// MetricName returns the __name__ value of ts, resolved through req's
// symbols, or "" if absent. It does not allocate and tolerates invalid refs.
func MetricName(req *writev2.Request, ts *writev2.TimeSeries) string {
	refs := ts.LabelsRefs
	for i := 0; i+1 < len(refs); i += 2 {
		n, v := refs[i], refs[i+1]
		if int64(n) >= int64(len(req.Symbols)) || int64(v) >= int64(len(req.Symbols)) {
			continue
		}
		if req.Symbols[n] == metricNameLabel {
			return req.Symbols[v]
		}
	}
	return ""
}

// Counts returns the number of float samples, histogram samples and
// exemplars in req (for the X-Prometheus-Remote-Write-*-Written headers).
func Counts(req *writev2.Request) (samples, histograms, exemplars int) {
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		samples += len(ts.Samples)
		histograms += len(ts.Histograms)
		exemplars += len(ts.Exemplars)
	}
	return samples, histograms, exemplars
}

// Builder builds a writev2.Request incrementally from series of other
// requests, re-symbolizing label, exemplar label and metadata help/unit refs
// into its own symbols table. Splitting a request between owners uses one
// Builder per owner. A Builder is not safe for concurrent use.
//
// Samples, histograms and the fields inside them are shared with the source
// request, not copied: neither must be mutated while both are in use.
// AddSeries caches the mapping of the most recent source's symbols (keyed by
// the identity of its Symbols slice), so a source's Symbols must not change
// while series from it are being added, until the next Reset.
type Builder struct {
	symbols   writev2.SymbolsTable
	series    []writev2.TimeSeries
	refs      []uint32
	exemplars []writev2.Exemplar

	// srcData/srcLen identify the source whose refs are cached in refCache;
	// refCache[srcRef] is the ref in b.symbols, 0 meaning not cached yet.
	srcData  *string
	srcLen   int
	refCache []uint32
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{symbols: writev2.NewSymbolTable()}
}

// AddSeries appends a copy of ts, whose refs point into src.Symbols. ts must
// be valid against src (as every series of a Decoded request is): AddSeries
// panics on out-of-range refs.
func (b *Builder) AddSeries(src *writev2.Request, ts *writev2.TimeSeries) {
	b.useSource(src.Symbols)
	b.addSeries(src, ts, b.resymbolize(src.Symbols, ts.LabelsRefs))
}

// addSeries appends ts with labelRefs (already in b's table) as its labels.
func (b *Builder) addSeries(src *writev2.Request, ts *writev2.TimeSeries, labelRefs []uint32) {
	b.useSource(src.Symbols)
	out := writev2.TimeSeries{
		LabelsRefs: labelRefs,
		Samples:    ts.Samples,
		Histograms: ts.Histograms,
		Metadata: writev2.Metadata{
			Type:    ts.Metadata.Type,
			HelpRef: b.ref(src.Symbols, ts.Metadata.HelpRef),
			UnitRef: b.ref(src.Symbols, ts.Metadata.UnitRef),
		},
	}
	if len(ts.Exemplars) > 0 {
		start := len(b.exemplars)
		for i := range ts.Exemplars {
			e := &ts.Exemplars[i]
			b.exemplars = append(b.exemplars, writev2.Exemplar{
				LabelsRefs: b.resymbolize(src.Symbols, e.LabelsRefs),
				Value:      e.Value,
				Timestamp:  e.Timestamp,
			})
		}
		end := len(b.exemplars)
		out.Exemplars = b.exemplars[start:end:end]
	}
	b.series = append(b.series, out)
}

// resymbolize maps refs from symbols into b's table, carving the result out
// of b's ref arena.
func (b *Builder) resymbolize(symbols []string, refs []uint32) []uint32 {
	if len(refs) == 0 {
		return nil
	}
	start := len(b.refs)
	for _, r := range refs {
		b.refs = append(b.refs, b.ref(symbols, r))
	}
	end := len(b.refs)
	return b.refs[start:end:end]
}

// useSource points the ref cache at symbols, clearing it on a change.
func (b *Builder) useSource(symbols []string) {
	data := unsafe.SliceData(symbols)
	if data == b.srcData && len(symbols) == b.srcLen {
		return
	}
	b.srcData, b.srcLen = data, len(symbols)
	if cap(b.refCache) < len(symbols) {
		b.refCache = make([]uint32, len(symbols))
		return
	}
	b.refCache = b.refCache[:len(symbols)]
	clear(b.refCache)
}

// ref maps a source ref into b's table through the cache.
func (b *Builder) ref(symbols []string, r uint32) uint32 {
	if r == 0 {
		return 0 // symbols[0] is "" in every valid request, as in b's table
	}
	if out := b.refCache[r]; out != 0 {
		return out
	}
	out := b.symbols.Symbolize(symbols[r])
	b.refCache[r] = out
	return out
}

// Len returns the number of series added since the last Reset.
func (b *Builder) Len() int { return len(b.series) }

// Request returns the request built so far. It aliases the Builder's memory
// and is valid until the next Reset.
func (b *Builder) Request() writev2.Request {
	return writev2.Request{Symbols: b.symbols.Symbols(), Timeseries: b.series}
}

// Reset empties the Builder for reuse, keeping its allocated capacity. It
// invalidates every Request previously returned.
func (b *Builder) Reset() {
	b.symbols.Reset()
	clear(b.series)
	b.series = b.series[:0]
	b.refs = b.refs[:0]
	clear(b.exemplars)
	b.exemplars = b.exemplars[:0]
	b.srcData, b.srcLen = nil, 0
}
