package aggregate

import (
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// kind is how a group aggregates.
type kind uint8

const (
	// kindCounter sums the increases of its inputs into a monotonic total
	// (float samples, or native histograms when hist is set).
	kindCounter kind = iota + 1
	// kindGauge keeps the last value of each input per interval.
	kindGauge
)

// tv is a timestamped value.
type tv struct {
	T int64
	V float64
}

// input is what a group remembers of one input series.
type input struct {
	// first sample seen here (to join a previous owner's state exactly).
	firstT int64
	firstV float64
	firstH *histogram.FloatHistogram
	// last sample taken: the base of the next increase.
	lastT int64
	lastV float64
	lastH *histogram.FloatHistogram
}

// window is one open interval of a group.
type window struct {
	start  int64 // ms, a multiple of the rule's interval
	delta  float64
	deltaH *histogram.FloatHistogram
	gauges map[uint64]tv // last value per input series (gauges)
	last   tv            // the latest sample of any input (gauges)
}

// group is one output series set: the state of one (tenant, input metric
// name, kept label values).
type group struct {
	tenant string
	metric string // the input metric name (the ring placement key)
	part   part
	kind   kind
	hist   bool // native histograms (counter kind)
	// floatH: a float histogram was among the inputs, so the output is a
	// float histogram; while every input is an integer histogram the sum
	// is written as one.
	floatH bool
	typ    int32
	kept   []labels.Label // kept labels, sorted
	out    []output       // one per rule output

	inputs  map[uint64]*input // by input series hash
	windows []*window         // sorted by start
	total   float64
	totalH  *histogram.FloatHistogram
	seen    int64 // ms of the newest sample, for expiry
	// carry is the group of a replaced version of the rule (carryFrom)
	// with the same output series: its total (read under carryFrom's lock)
	// is added to this group's counter outputs, so they continue it
	// (reload.go).
	carry     *group
	carryFrom *rule
}

// output is one output series of a group.
type output struct {
	op     string
	labels labels.Labels
	hash   uint64
	series []byte // encoded label fields
}

// windowFor returns the open window holding t, creating it.
func (g *group) windowFor(start int64) *window {
	i := len(g.windows)
	for i > 0 && g.windows[i-1].start >= start {
		if g.windows[i-1].start == start {
			return g.windows[i-1]
		}
		i--
	}
	w := &window{start: start}
	if g.kind == kindGauge {
		w.gauges = map[uint64]tv{}
	}
	g.windows = append(g.windows, nil)
	copy(g.windows[i+1:], g.windows[i:])
	g.windows[i] = w
	return w
}

// outcome of adding one sample.
type outcome uint8

const (
	taken outcome = iota
	lateSample
	outOfOrder
	invalidSample
)

// addFloat adds one float sample of input series h to the group.
func (g *group) addFloat(h uint64, s sample, start int64, late bool) outcome {
	in := g.inputs[h]
	if value.IsStaleNaN(s.v) {
		// The input series ended: forget it (if it comes back it starts
		// afresh, as a new series would for rate()).
		delete(g.inputs, h)
		if g.kind == kindGauge && !late {
			delete(g.windowFor(start).gauges, h)
		}
		return taken
	}
	if math.IsNaN(s.v) && g.kind == kindCounter {
		return invalidSample
	}
	if in != nil && s.t <= in.lastT {
		return outOfOrder
	}
	if late {
		// A counter's increase is not lost: the base stays, so the next
		// sample in time carries it.
		return lateSample
	}
	w := g.windowFor(start)
	if s.t > g.seen {
		g.seen = s.t
	}
	switch g.kind {
	case kindCounter:
		if in == nil {
			g.inputs[h] = &input{firstT: s.t, firstV: s.v, lastT: s.t, lastV: s.v}
			return taken
		}
		d := s.v - in.lastV
		if s.v < in.lastV { // reset
			d = s.v
		}
		w.delta += d
		in.lastT, in.lastV = s.t, s.v
	case kindGauge:
		if in == nil {
			g.inputs[h] = &input{firstT: s.t, firstV: s.v, lastT: s.t, lastV: s.v}
		} else {
			in.lastT, in.lastV = s.t, s.v
		}
		w.gauges[h] = tv{s.t, s.v}
		if s.t >= w.last.T {
			w.last = tv{s.t, s.v}
		}
	}
	return taken
}

// addHist adds one native histogram sample (a counter) of input series h.
func (g *group) addHist(h uint64, t int64, fh *histogram.FloatHistogram, start int64, late bool) outcome {
	in := g.inputs[h]
	if value.IsStaleNaN(fh.Sum) {
		delete(g.inputs, h)
		return taken
	}
	if in != nil && t <= in.lastT {
		return outOfOrder
	}
	if late {
		return lateSample
	}
	w := g.windowFor(start)
	if t > g.seen {
		g.seen = t
	}
	if in == nil {
		g.inputs[h] = &input{firstT: t, firstH: fh, lastT: t, lastH: fh}
		return taken
	}
	d := fh
	if !fh.DetectReset(in.lastH) {
		var err error
		if d, _, _, err = fh.Copy().Sub(in.lastH); err != nil {
			return invalidSample
		}
	}
	if err := addInto(&w.deltaH, d); err != nil {
		return invalidSample
	}
	in.lastT, in.lastH = t, fh
	return taken
}

// addInto adds d to *dst (a copy of d when *dst is nil). Histograms of
// different exponential schemas are merged at the lower one.
func addInto(dst **histogram.FloatHistogram, d *histogram.FloatHistogram) error {
	if *dst == nil {
		*dst = d.Copy()
		(*dst).CounterResetHint = histogram.UnknownCounterReset
		return nil
	}
	_, _, _, err := (*dst).Add(d)
	return err
}

// closeWindow folds w into the group's total and returns the values of
// each output at the window's end; ok is false when there is nothing to
// write (a gauge window without inputs).
func (g *group) closeWindow(w *window, ops []string, vals []float64) (fh *histogram.FloatHistogram, ok bool) {
	switch g.kind {
	case kindCounter:
		if g.hist {
			if w.deltaH != nil {
				if err := addInto(&g.totalH, w.deltaH); err != nil {
					return nil, false
				}
			}
			if g.totalH == nil {
				// Only first samples so far: a zero histogram of their schema.
				for _, in := range g.inputs {
					if in.lastH != nil {
						z := in.lastH.Copy()
						z.Mul(0)
						g.totalH = z
						break
					}
				}
			}
			return g.totalH, g.totalH != nil
		}
		g.total += w.delta
		for i := range vals {
			vals[i] = g.total
		}
		return nil, true
	case kindGauge:
		if len(w.gauges) == 0 {
			return nil, false
		}
		sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
		for _, x := range w.gauges {
			sum += x.V
			lo = math.Min(lo, x.V)
			hi = math.Max(hi, x.V)
		}
		n := float64(len(w.gauges))
		for i, op := range ops {
			switch op {
			case OutputSum:
				vals[i] = sum
			case OutputMin:
				vals[i] = lo
			case OutputMax:
				vals[i] = hi
			case OutputAvg:
				vals[i] = sum / n
			case OutputCount:
				vals[i] = n
			case OutputLast:
				vals[i] = w.last.V
			}
		}
		return nil, true
	}
	return nil, false
}
