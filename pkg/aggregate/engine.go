package aggregate

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/stage"
)

// Engine holds the aggregation rules and their state. Every method is safe
// for concurrent use: the rules in force are an immutable ruleSet read
// without a lock and replaced whole by Reload; each rule's state has its
// own lock.
type Engine struct {
	set       atomic.Pointer[ruleSet]
	setMu     sync.Mutex // serialises the writers of set: Reload, the end of a retirement
	types     typeMemory
	maxGroups atomic.Int64
	groups    atomic.Int64
	m         *metrics
	logger    *slog.Logger
	scratch   sync.Pool // *parsed
}

// New compiles cfg's rules. It returns nil (and no error) when there are
// none: a caller whose rules cannot change then skips aggregation
// entirely. reg and logger may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	if len(cfg.Rules) == 0 && !cfg.Overflow {
		return nil, nil
	}
	return NewEngine(cfg, logger, reg)
}

// NewEngine is New for a process whose rules can change (Reload): it
// returns an engine even without rules. With none, Process costs one atomic
// load. reg and logger may be nil.
func NewEngine(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		m:       newMetrics(reg),
		logger:  logger,
		scratch: sync.Pool{New: func() any { return new(parsed) }},
	}
	e.setMaxGroups(cfg.MaxGroups)
	set, _, err := e.compileSet(cfg, &ruleSet{}, 0)
	if err != nil {
		return nil, err
	}
	e.set.Store(set)
	return e, nil
}

func (e *Engine) setMaxGroups(n int) {
	if n == 0 {
		n = DefaultMaxGroups
	}
	e.maxGroups.Store(int64(n))
}

// HasRules reports whether any aggregation rule is configured (or still
// closing the intervals it had open when a reload removed it).
func (e *Engine) HasRules() bool { return len(e.set.Load().routing) > 0 }

// RememberType records the Remote Write 1.0 metadata type of a family
// (typ as prompb.MetricMetadata_MetricType, which has writev2's values).
func (e *Engine) RememberType(tenant, family string, typ int32) {
	set := e.set.Load()
	if set.routing[family] == nil && !set.families[family] {
		return
	}
	e.types.set(tenant, family, writev2.Metadata_MetricType(typ))
}

// Taken is what Process took out of a batch: series aggregated away (and
// summary quantiles dropped), with their samples, histograms and exemplars.
type Taken struct {
	Series, Samples, Histograms, Exemplars int
}

// Add returns the sum of t and u.
func (t Taken) Add(u Taken) Taken {
	return Taken{Series: t.Series + u.Series, Samples: t.Samples + u.Samples, Histograms: t.Histograms + u.Histograms, Exemplars: t.Exemplars + u.Exemplars}
}

// Process runs the rules over batch (validated record entries of tenant;
// names[i] is the metric name of entry i) and returns the batch to write:
// batch itself when nothing was taken, else a new batch without the
// entries that were aggregated away. Each entry of a metric some rule
// reads is handed to those rules, stage.Consumers (entry).
func (e *Engine) Process(tenant string, batch []byte, names []string) ([]byte, Taken) {
	var (
		kept  []byte // nil until the first entry taken
		taken Taken
		i     int
	)
	set := e.set.Load()
	if len(set.routing) == 0 {
		return batch, taken
	}
	p := e.scratch.Get().(*parsed)
	defer e.scratch.Put(p)
	it := record.NewIter(batch)
	for ; it.Next(); i++ {
		ent := it.Entry()
		rs := set.routing[names[i]]
		if rs != nil && entry(tenant, names[i], ent, rs, p) {
			if kept == nil {
				kept = append(make([]byte, 0, it.Offset()), batch[:it.Offset()]...)
			}
			taken.Series++
			taken.Samples += ent.Samples
			taken.Histograms += ent.Histograms
			taken.Exemplars += ent.Exemplars
			continue
		}
		if kept != nil {
			kept = append(kept, ent.Raw...)
		}
	}
	if kept == nil {
		return batch, taken
	}
	return kept, taken
}

// entry hands one entry to every rule reading it (rule.consume: Consume
// of the entry decoded once into p) and applies their modes: it reports
// whether the entry is taken out of the batch, which is when some enforced
// rule took it (aggregated or dropped it) and no enforced rule needs it
// written (keep_input, or a series it passed through). A shadow rule folds
// into its outputs but changes nothing here.
func entry(tenant, name string, ent *record.Entry, rs []*rule, p *parsed) bool {
	if !p.parse(ent.Series) {
		for _, r := range rs {
			r.m.pass(ReasonUnsupported, ent.Count())
		}
		return false
	}
	take, keep := false, false
	var d decision
	for _, r := range rs {
		r.consume(tenant, name, ent, p, &d)
		if !r.enforce {
			continue
		}
		switch v := &d.v; {
		case v.Action == stage.ActionAggregate || v.Action == stage.ActionDrop:
			take = true
		case v.Action == stage.ActionCopy || v.Reason != "":
			keep = true
		}
	}
	return take && !keep
}

// typeOf resolves the metric type of an input: its own metadata, else the
// remembered 1.0 metadata of the family, else the rule's declared type.
func (e *Engine) typeOf(r *rule, tenant, name string, p *parsed) writev2.Metadata_MetricType {
	if p.typ != writev2.Metadata_METRIC_TYPE_UNSPECIFIED {
		return p.typ
	}
	family := r.family
	if r.overflow {
		family = name
	}
	if t := e.types.get(tenant, family); t != writev2.Metadata_METRIC_TYPE_UNSPECIFIED {
		return t
	}
	if r.overflow {
		for _, suf := range partSuffix[1:] {
			if base, ok := strings.CutSuffix(name, suf); ok {
				if t := e.types.get(tenant, base); t == writev2.Metadata_METRIC_TYPE_HISTOGRAM || t == writev2.Metadata_METRIC_TYPE_SUMMARY {
					return t
				}
			}
		}
	}
	switch r.cfg.Type {
	case TypeCounter:
		return writev2.Metadata_METRIC_TYPE_COUNTER
	case TypeGauge:
		return writev2.Metadata_METRIC_TYPE_GAUGE
	case TypeHistogram:
		return writev2.Metadata_METRIC_TYPE_HISTOGRAM
	case TypeSummary:
		return writev2.Metadata_METRIC_TYPE_SUMMARY
	}
	return writev2.Metadata_METRIC_TYPE_UNSPECIFIED
}

var declared = map[Type]writev2.Metadata_MetricType{
	TypeCounter:   writev2.Metadata_METRIC_TYPE_COUNTER,
	TypeGauge:     writev2.Metadata_METRIC_TYPE_GAUGE,
	TypeHistogram: writev2.Metadata_METRIC_TYPE_HISTOGRAM,
	TypeSummary:   writev2.Metadata_METRIC_TYPE_SUMMARY,
}

// classify decides how rule r aggregates an input of type typ: its kind,
// or a reason it is passed through (pass) or dropped (drop).
func (r *rule) classify(typ writev2.Metadata_MetricType, pt part, p *parsed) (k kind, hist bool, pass, drop string) {
	if d, ok := declared[r.cfg.Type]; ok && typ != d {
		return 0, false, ReasonWrongType, ""
	}
	floats, hists := len(p.samples) > 0, len(p.hists) > 0
	switch typ {
	case writev2.Metadata_METRIC_TYPE_UNSPECIFIED:
		return 0, false, ReasonUnknownType, ""
	case writev2.Metadata_METRIC_TYPE_COUNTER:
		k = kindCounter
	case writev2.Metadata_METRIC_TYPE_GAUGE:
		if pt != partWhole {
			return 0, false, ReasonWrongType, ""
		}
		k = kindGauge
	case writev2.Metadata_METRIC_TYPE_HISTOGRAM:
		k = kindCounter
		switch pt {
		case partWhole:
			if floats {
				return 0, false, ReasonUnsupported, ""
			}
			hist = true
		case partBucket:
			if _, ok := p.value("le"); !ok {
				return 0, false, ReasonUnsupported, ""
			}
		}
	case writev2.Metadata_METRIC_TYPE_SUMMARY:
		k = kindCounter
		switch pt {
		case partWhole:
			return 0, false, "", ReasonSummaryQuantile
		case partBucket:
			return 0, false, ReasonUnsupported, ""
		}
	default: // gauge histograms, info, stateset
		return 0, false, ReasonUnsupported, ""
	}
	if hists != hist && (floats || hists) {
		return 0, false, ReasonUnsupported, ""
	}
	if k != kindGauge && (len(r.outputs) != 1 || r.outputs[0] != OutputSum) {
		return 0, false, ReasonWrongType, ""
	}
	return k, hist, "", ""
}

// partOf says which series of r's family name is (of type typ).
func (r *rule) partOf(name string, typ writev2.Metadata_MetricType) part {
	if r.overflow {
		if typ != writev2.Metadata_METRIC_TYPE_HISTOGRAM && typ != writev2.Metadata_METRIC_TYPE_SUMMARY {
			return partWhole
		}
		for p, s := range partSuffix {
			if p != 0 && strings.HasSuffix(name, s) {
				return part(p)
			}
		}
		return partWhole
	}
	if name == r.family {
		return partWhole
	}
	rest, _ := strings.CutPrefix(name, r.family)
	for p, s := range partSuffix {
		if p != 0 && rest == s {
			return part(p)
		}
	}
	return partWhole
}

// fold aggregates one input series under rule r as decided by d, and
// leaves the outcome in d: d.v stays the decided verdict, or becomes one
// letting the series through when the group limit is reached, or dropping
// it when the rule retired; d.g is the group it folded into.
func (e *Engine) fold(r *rule, tenant, name string, h uint64, p *parsed, d *decision) {
	n := len(p.samples) + len(p.hists)
	if d.pass != "" {
		r.m.pass(d.pass, n)
		return
	}
	if d.drop != "" {
		r.m.drop(d.drop, n)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired { // a reload removed it and its last interval closed
		r.m.drop(ReasonLate, n)
		d.v = r.dropped(ReasonLate)
		return
	}
	pt, k, hist := d.pt, d.k, d.hist
	g := r.group(e, tenant, name, pt, k, hist, int32(d.typ), p)
	if g == nil {
		r.m.pass(ReasonMaxGroups, n)
		d.v = stage.Verdict{Reason: ReasonMaxGroups}
		return
	}
	d.g = g
	var late, ooo, invalid, in int
	count := func(o outcome) {
		switch o {
		case taken:
			in++
		case lateSample:
			late++
		case outOfOrder:
			ooo++
		case invalidSample:
			invalid++
		}
	}
	if r.prev != nil && r.join && g.inputs[h] == nil {
		// A replaced rule's successor: the input carries on from the base
		// its predecessor had, so the increase between the two is kept.
		if in := r.prev.takeInput(tenant, name, pt, k, hist, h, p); in != nil {
			g.inputs[h] = in
		}
	}
	until := r.until.Load() // retiring: samples from its hand-over on are not its
	before := len(g.inputs)
	if hist {
		for _, b := range p.hists {
			var ph prompb.Histogram
			if err := ph.Unmarshal(b); err != nil {
				count(invalidSample)
				continue
			}
			if until != 0 && ph.Timestamp >= until {
				count(lateSample)
				continue
			}
			var fh *histogram.FloatHistogram
			if ph.IsFloatHistogram() {
				fh = ph.ToFloatHistogram()
				g.floatH = true
			} else {
				fh = ph.ToIntHistogram().ToFloat(nil)
			}
			count(g.addHist(h, ph.Timestamp, fh, r.start(ph.Timestamp), ph.Timestamp < r.closed))
		}
	} else {
		for _, s := range p.samples {
			if until != 0 && s.t >= until {
				count(lateSample)
				continue
			}
			count(g.addFloat(h, s, r.start(s.t), s.t < r.closed))
		}
	}
	r.m.inputSeries.Add(float64(len(g.inputs) - before))
	r.m.in.Add(float64(in))
	r.m.drop(ReasonLate, late)
	r.m.drop(ReasonOutOfOrder, ooo)
	r.m.drop(ReasonInvalid, invalid)
	r.m.drop(ReasonExemplar, p.exemplars)
}

// start is the start of the interval holding t.
func (r *rule) start(t int64) int64 {
	m := t % r.interval
	if m < 0 {
		m += r.interval
	}
	return t - m
}

// group returns the group of an input, creating it (nil when
// aggregations_max_groups is reached). r.mu is held.
func (r *rule) group(e *Engine, tenant, name string, pt part, k kind, hist bool, typ int32, p *parsed) *group {
	key := r.keyOf(tenant, name, pt, k, p)
	if g, ok := r.groups[string(key)]; ok {
		return g
	}
	if e.groups.Add(1) > e.maxGroups.Load() {
		e.groups.Add(-1)
		return nil
	}
	var kept []labels.Label
	for _, l := range p.labels {
		if v, ok := r.kept(l, pt, p); ok {
			kept = append(kept, labels.Label{Name: string(l.name), Value: string(v)})
		}
	}
	g := r.newGroup(tenant, name, pt, k, hist, typ, sortedKept(kept))
	if r.prev != nil && k == kindCounter {
		g.carryFrom, g.carry = r.prev.sameOutputs(key, g)
	}
	r.groups[string(key)] = g
	r.m.groups.Add(float64(len(g.out)))
	return g
}

// keyOf builds the key of the group an input belongs to in r.keyBuf. r.mu
// is held.
func (r *rule) keyOf(tenant, name string, pt part, k kind, p *parsed) []byte {
	key := append(r.keyBuf[:0], tenant...)
	key = append(key, 0xff)
	key = append(key, name...)
	key = append(key, 0xff, byte(k))
	for _, l := range p.labels {
		if v, ok := r.kept(l, pt, p); ok {
			key = append(key, l.name...)
			key = append(key, 0xff)
			key = append(key, v...)
			key = append(key, 0xff)
		}
	}
	r.keyBuf = key
	return key
}

// newGroup builds an empty group.
func (r *rule) newGroup(tenant, name string, pt part, k kind, hist bool, typ int32, kept []labels.Label) *group {
	g := &group{tenant: tenant, metric: strings.Clone(name), // name may view an entry
		part: pt, kind: k, hist: hist, typ: typ, kept: kept, inputs: map[uint64]*input{}}
	for i, ls := range r.outputLabels(name, pt, kept) {
		g.out = append(g.out, output{op: r.outputs[i], labels: ls, hash: ls.Hash(), series: record.AppendLabels(nil, ls)})
	}
	return g
}

// typeMemory remembers Remote Write 1.0 family types of the families rules
// read; bounded (cleared when full).
type typeMemory struct {
	mu sync.RWMutex
	m  map[typeKey]writev2.Metadata_MetricType
}

type typeKey struct{ tenant, family string }

const maxRememberedTypes = 100_000

func (t *typeMemory) set(tenant, family string, typ writev2.Metadata_MetricType) {
	k := typeKey{tenant, family}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil || len(t.m) >= maxRememberedTypes {
		t.m = map[typeKey]writev2.Metadata_MetricType{}
	}
	t.m[k] = typ
}

func (t *typeMemory) get(tenant, family string) writev2.Metadata_MetricType {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[typeKey{tenant, family}]
}

// Overflow aggregates entries of batch (validated record entries of
// tenant) that a per-metric cardinality limit refused, when labelsOf says
// the metric's policy is overflow: each is folded into the series with its
// overflowing labels set to __overflow__, aggregated like a rule would
// (counters summed monotonic, gauges summed), under the metric's own name.
// It returns what it took and the entries it could not take (unknown
// type, max groups), which stay refused.
func (e *Engine) Overflow(tenant string, batch []byte, labelsOf func(tenant, metric string) ([]string, bool)) (Taken, []byte) {
	var (
		taken Taken
		rest  []byte
	)
	set := e.set.Load()
	if len(set.overflows) == 0 {
		return taken, batch
	}
	var (
		over stage.Consumer = &overflowStage{e: e, set: set, labelsOf: labelsOf}
		in                  = stage.Input{Tenant: tenant}
	)
	it := record.NewIter(batch)
	for it.Next() {
		ent := it.Entry()
		v := over.Consume(&in, ent)
		if v.Action != stage.ActionAggregate && v.Action != stage.ActionDrop {
			rest = append(rest, ent.Raw...)
			continue
		}
		taken.Series++
		taken.Samples += ent.Samples
		taken.Histograms += ent.Histograms
		taken.Exemplars += ent.Exemplars
	}
	return taken, rest
}
