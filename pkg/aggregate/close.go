package aggregate

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

// Output is what closing intervals produced for one tenant: a batch of
// record entries, one per output series and interval.
type Output struct {
	Tenant  string
	Batch   []byte
	Samples int // float samples + histograms
}

// Owns reports whether this ingester owns (tenant, metric) now; outputs of
// metrics it does not own are folded into the state but not written (the
// owner writes them once it has pulled the state). Safe for concurrent use.
type Owns func(tenant, metric string) bool

// Expiry bounds: an input series not seen for inputExpiry is forgotten
// (if it comes back, it starts afresh like a new series); a group without
// inputs and open intervals is forgotten after groupExpiry, losing its
// counter total (its output then restarts from 0: a counter reset).
const (
	inputExpiry = 10 * time.Minute
	groupExpiry = time.Hour
)

// Close closes every interval whose end plus max_delay is at or before now
// and returns the outputs to write, one Output per tenant, sorted by
// tenant. owns may be nil (everything is written).
func (e *Engine) Close(now time.Time, owns Owns) []Output {
	ms := now.UnixMilli()
	byTenant := map[string]*Output{}
	set := e.set.Load()
	for _, r := range set.rules {
		r.close(e, ms, owns, byTenant)
	}
	var done []*rule
	for _, r := range set.retiring { // predecessors first
		r.close(e, ms, owns, byTenant)
		if r.handedOver() {
			done = append(done, r)
			if n := r.next.Load(); n != nil {
				// Its successor takes every entry from now on (a late
				// one is late there too), and may hand over in turn.
				n.handing.Store(false)
			}
		}
	}
	if len(done) > 0 {
		e.endRetirement(done)
	}
	out := make([]Output, 0, len(byTenant))
	for _, o := range byTenant {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b Output) int { return strings.Compare(a.Tenant, b.Tenant) })
	return out
}

// close closes r's intervals up to now (ms).
func (r *rule) close(e *Engine, now int64, owns Owns, byTenant map[string]*Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	to := r.start(now - r.maxDelay) // intervals ending at or before it close
	if to <= r.closed {
		return
	}
	r.closed = to
	vals := make([]float64, len(r.outputs))
	var written int
	for key, g := range r.groups {
		emit := owns == nil || owns(g.tenant, g.metric)
		var o *Output
		for len(g.windows) > 0 && g.windows[0].start+r.interval <= to {
			w := g.windows[0]
			g.windows = g.windows[1:]
			fh, ok := g.closeWindow(w, r.outputs, vals)
			if ok && g.carry != nil {
				fh = addCarry(g, vals, fh)
			}
			if !ok || !emit {
				continue
			}
			if !r.enforce { // shadow: count what would be written
				written += len(g.out)
				continue
			}
			if o == nil {
				if o = byTenant[g.tenant]; o == nil {
					o = &Output{Tenant: g.tenant}
					byTenant[g.tenant] = o
				}
			}
			ts := w.start + r.interval - 1
			for i := range g.out {
				o.Batch = appendOutput(o.Batch, &g.out[i], g.typeFor(r.outputs[i]), ts, vals[i], fh, !g.floatH)
				o.Samples++
				written++
			}
		}
		if len(g.windows) == 0 {
			g.windows = nil // let the backing array go
		}
		r.expire(e, key, g, now)
	}
	r.m.out.Add(float64(written))
	r.forgetPrev(now)
}

// expire forgets the inputs and the group when they have been idle long
// enough. r.mu is held.
func (r *rule) expire(e *Engine, key string, g *group, now int64) {
	if now-g.seen < inputExpiry.Milliseconds() {
		return
	}
	for h, in := range g.inputs {
		if now-in.lastT >= inputExpiry.Milliseconds() {
			delete(g.inputs, h)
			r.m.inputSeries.Dec()
		}
	}
	if len(g.inputs) == 0 && len(g.windows) == 0 && now-g.seen >= groupExpiry.Milliseconds() {
		delete(r.groups, key)
		e.groups.Add(-1)
		r.m.groups.Sub(float64(len(g.out)))
	}
}

// typeFor is the metadata type of an output: the input's type, gauge for
// the gauge outputs.
func (g *group) typeFor(op string) int32 {
	if g.kind == kindGauge {
		return 2 // gauge
	}
	_ = op
	return g.typ
}

// appendOutput appends the record entry of one output sample (a float, or
// fh when not nil: an integer histogram when ints is set and every count
// of fh is a whole number, as the sum of integer histograms is).
func appendOutput(dst []byte, o *output, typ int32, ts int64, v float64, fh *histogram.FloatHistogram, ints bool) []byte {
	var body []byte
	samples, hists := 0, 0
	if fh != nil {
		ph := prompb.FromFloatHistogram(ts, fh)
		if ih, ok := toIntHistogram(fh); ints && ok {
			ph = prompb.FromIntHistogram(ts, ih)
		}
		b, err := ph.Marshal()
		if err != nil {
			return dst
		}
		body = protowire.AppendTag(nil, record.FieldHistograms, protowire.BytesType)
		body = protowire.AppendBytes(body, b)
		hists = 1
	} else {
		var s []byte
		s = protowire.AppendTag(s, record.FieldSampleValue, protowire.Fixed64Type)
		s = binary.LittleEndian.AppendUint64(s, math.Float64bits(v))
		s = protowire.AppendTag(s, record.FieldSampleTS, protowire.VarintType)
		s = protowire.AppendVarint(s, uint64(ts))
		body = protowire.AppendTag(nil, record.FieldSamples, protowire.BytesType)
		body = protowire.AppendBytes(body, s)
		samples = 1
	}
	size := len(o.series) + len(body) + record.MetadataFieldSize(typ, nil, nil)
	dst = record.AppendHeader(dst, o.hash, record.FlagExtras, samples, hists, 0, size)
	dst = append(dst, o.series...)
	dst = append(dst, body...)
	return record.AppendMetadataField(dst, typ, nil, nil)
}

// maxExactInt bounds the counts toIntHistogram converts: every whole number
// up to it is exact as a float64.
const maxExactInt = 1 << 53

// toIntHistogram is fh as an integer histogram, when every count is a whole
// number (the sum of integer histograms' increases always is, below 2^53).
func toIntHistogram(fh *histogram.FloatHistogram) (*histogram.Histogram, bool) {
	whole := func(v float64) bool { return v >= 0 && v < maxExactInt && v == math.Trunc(v) }
	if !whole(fh.Count) || !whole(fh.ZeroCount) {
		return nil, false
	}
	h := &histogram.Histogram{
		CounterResetHint: fh.CounterResetHint, Schema: fh.Schema, ZeroThreshold: fh.ZeroThreshold,
		ZeroCount: uint64(fh.ZeroCount), Count: uint64(fh.Count), Sum: fh.Sum,
		PositiveSpans: slices.Clone(fh.PositiveSpans), NegativeSpans: slices.Clone(fh.NegativeSpans),
		CustomValues: slices.Clone(fh.CustomValues),
	}
	var ok bool
	if h.PositiveBuckets, ok = deltaBuckets(fh.PositiveBuckets, whole); !ok {
		return nil, false
	}
	if h.NegativeBuckets, ok = deltaBuckets(fh.NegativeBuckets, whole); !ok {
		return nil, false
	}
	return h, h.Validate() == nil
}

// deltaBuckets encodes absolute bucket counts as an integer histogram's
// deltas; false when a count is not a whole number.
func deltaBuckets(counts []float64, whole func(float64) bool) ([]int64, bool) {
	if len(counts) == 0 {
		return nil, true
	}
	out := make([]int64, len(counts))
	prev := int64(0)
	for i, c := range counts {
		if !whole(c) {
			return nil, false
		}
		out[i] = int64(c) - prev
		prev = int64(c)
	}
	return out, true
}
