package aggregate

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"
)

// ruleSet is the rules an Engine applies, immutable once published
// (Engine.set): Process, Overflow and Close read it without a lock, and
// Reload replaces it whole.
type ruleSet struct {
	// rules are in force: the overflow rule first (when on), then the
	// configured order.
	rules []*rule
	// byName maps an input metric name to the rules in force reading it;
	// routing adds the retiring rules (Process).
	byName, routing map[string][]*rule
	// families are the families the routing rules read (RememberType).
	families map[string]bool
	// overflows is the overflow rule in force (if any), then the overflow
	// rules retiring.
	overflows []*rule
	// retiring are rules a reload replaced or removed: they take no entry
	// stamped from their hand-over (rule.until) on, and leave once they
	// closed the intervals before it.
	retiring []*rule
}

// index builds the maps of s from its rules.
func (s *ruleSet) index() {
	s.byName, s.routing, s.families, s.overflows = map[string][]*rule{}, map[string][]*rule{}, map[string]bool{}, nil
	add := func(r *rule, inForce bool) {
		s.families[r.family] = true
		if r.overflow {
			s.overflows = append(s.overflows, r)
			return
		}
		for _, n := range r.inputNames() {
			s.routing[n] = append(s.routing[n], r)
			if inForce {
				s.byName[n] = append(s.byName[n], r)
			}
		}
	}
	for _, r := range s.rules {
		add(r, true)
	}
	for _, r := range s.retiring {
		add(r, false)
	}
}

// all is the rules in force and the rules retiring.
func (s *ruleSet) all() []*rule { return append(slices.Clone(s.rules), s.retiring...) }

// ReloadSummary says, by rule name, what a Reload changed.
type ReloadSummary struct {
	Added, Changed, Removed, Unchanged []string
}

// Reload applies cfg's rules (and aggregations_max_groups) at once,
// keeping the state of every rule whose configuration did not change. A
// rule removed, or replaced by a changed version of the same name, hands
// over at the end of the interval open at now (or of a later interval it
// already holds samples for): entries stamped before that still count in it,
// its intervals close and are written as usual (timestamp end − 1 ms), and
// then it is forgotten; entries stamped from then on go to its replacement,
// whose counter inputs carry on from the bases the old version had (nothing
// is lost between the two, nothing is counted twice), or, for a removed
// rule, are written unaggregated. An added rule starts empty.
// aggregations_snapshot_path changes nothing here (it is read at start), nor
// does Overflow turn the overflow aggregation on in a service built
// without it (the ingester's concern). On error nothing changes.
func (e *Engine) Reload(cfg Config, now time.Time) (ReloadSummary, error) {
	if err := cfg.Validate(); err != nil {
		return ReloadSummary{}, err
	}
	e.setMu.Lock()
	defer e.setMu.Unlock()
	set, sum, err := e.compileSet(cfg, e.set.Load(), now.UnixMilli())
	if err != nil {
		return ReloadSummary{}, err
	}
	e.setMaxGroups(cfg.MaxGroups)
	e.set.Store(set)
	return sum, nil
}

// overflowRule is the configuration of the built-in overflow aggregation.
func overflowRule(cfg Config) RuleConfig {
	iv := cfg.OverflowInterval
	if iv == 0 {
		iv = model.Duration(DefaultOverflowInterval)
	}
	return RuleConfig{Name: OverflowRuleName, Match: "__overflow__", Without: []string{OverflowValue}, Interval: iv, MaxDelay: cfg.OverflowMaxDelay}
}

// compileSet builds the rule set of cfg from old: unchanged rules are kept
// (with their state), changed ones hand over to their new version, removed
// ones retire. e.setMu is held (or e is not shared yet).
func (e *Engine) compileSet(cfg Config, old *ruleSet, now int64) (*ruleSet, ReloadSummary, error) {
	confs := slices.Clone(cfg.Rules)
	if cfg.Overflow {
		confs = append([]RuleConfig{overflowRule(cfg)}, confs...)
	}
	fresh := make([]*rule, len(confs))
	for i, c := range confs {
		r, err := compile(c)
		if err != nil {
			return nil, ReloadSummary{}, fmt.Errorf("aggregations (%s): %w", c.Name, err)
		}
		r.overflow = c.Name == OverflowRuleName
		r.e = e
		fresh[i] = r
	}
	// Nothing failed: from here on the old rules are changed.
	inForce := map[string]*rule{}
	for _, r := range old.rules {
		inForce[r.cfg.Name] = r
	}
	leaving := map[string]*rule{} // the newest version retiring, by name
	for _, r := range old.retiring {
		leaving[r.cfg.Name] = r
	}
	set := &ruleSet{retiring: slices.Clone(old.retiring)}
	var sum ReloadSummary
	for i, r := range fresh {
		name := confs[i].Name
		o := inForce[name]
		delete(inForce, name)
		switch {
		case o != nil && o.fingerprint == r.fingerprint:
			r = o
			sum.Unchanged = append(sum.Unchanged, name)
		case o != nil:
			r.takeOver(o, o.retire(now), true)
			set.retiring = append(set.retiring, o)
			sum.Changed = append(sum.Changed, name)
		default:
			if l := leaving[name]; l != nil && l.next.Load() == nil {
				// Added again while its removed version still closes
				// intervals: it takes over from that version's time
				// and total, but not from its inputs' bases (what they
				// grew by meanwhile was written unaggregated).
				r.takeOver(l, l.until.Load(), false)
			}
			sum.Added = append(sum.Added, name)
		}
		if r.m == nil {
			mode := ModeEnforce
			if !r.enforce {
				mode = ModeShadow
			}
			r.m = e.m.forRule(name, mode)
		}
		set.rules = append(set.rules, r)
	}
	for _, o := range old.rules {
		if inForce[o.cfg.Name] == o {
			o.retire(now)
			set.retiring = append(set.retiring, o)
			sum.Removed = append(sum.Removed, o.cfg.Name)
		}
	}
	set.index()
	return set, sum, nil
}

// retire stops r at the end of the interval holding now, or of the latest
// interval it holds samples for, and returns that hand-over time (ms).
func (r *rule) retire(now int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.start(now) + r.interval
	for _, g := range r.groups {
		if n := len(g.windows); n > 0 {
			h = max(h, g.windows[n-1].start+r.interval)
		}
	}
	r.until.Store(h)
	return h
}

// takeOver makes r (not published yet) the successor of prev from the
// hand-over time h on: its intervals start after prev's last one, so no
// output timestamp is written twice; join: its inputs carry on from prev's
// bases. e.setMu is held.
func (r *rule) takeOver(prev *rule, h int64, join bool) {
	r.prev, r.from, r.closed, r.join = prev, h, h, join
	r.handing.Store(true)
	prev.next.Store(r)
}

// owns reports whether the entry parsed in p is r's: a retiring rule takes
// entries stamped before its hand-over, its successor those from it on
// (and every entry once the predecessor is gone). An entry is judged by its
// newest sample.
func (r *rule) owns(p *parsed) bool {
	if u := r.until.Load(); u != 0 && p.newest() >= u {
		return false
	}
	if r.handing.Load() && p.newest() < r.from {
		return false
	}
	return true
}

// takeInput hands the base of input h (an input of r's successor, whose
// group in r is found from p) over to the successor and forgets it here;
// nil when r has none of the same kind.
func (r *rule) takeInput(tenant, name string, pt part, k kind, hist bool, h uint64, p *parsed) *input {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[string(r.keyOf(tenant, name, pt, k, p))]
	if g == nil && r.prev != nil && r.join { // replaced before it saw the group
		return r.prev.takeInput(tenant, name, pt, k, hist, h, p)
	}
	if g == nil || g.kind != k || g.hist != hist {
		return nil
	}
	in := g.inputs[h]
	if in == nil {
		if r.prev != nil && r.join { // replaced before it saw the input
			return r.prev.takeInput(tenant, name, pt, k, hist, h, p)
		}
		return nil
	}
	delete(g.inputs, h)
	if !r.retired {
		r.m.inputSeries.Dec()
	}
	return in
}

// handedOver reports whether a retiring rule closed every interval before
// its hand-over, and its own predecessors are gone: only then may its
// successor take every entry (a version replaced in turn before its
// predecessor left must not release its successor early).
func (r *rule) handedOver() bool {
	if r.handing.Load() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed >= r.until.Load()
}

// endRetirement takes the rules in done (retiring, every interval closed)
// out of the rule set. A removed rule's state and metrics are forgotten; a
// replaced rule keeps its input bases for its successor until inputExpiry
// after the hand-over (rule.forgetPrev).
func (e *Engine) endRetirement(done []*rule) {
	e.setMu.Lock()
	defer e.setMu.Unlock()
	old := e.set.Load()
	set := &ruleSet{rules: old.rules}
	for _, r := range old.retiring {
		if !slices.Contains(done, r) {
			set.retiring = append(set.retiring, r)
		}
	}
	set.index()
	e.set.Store(set)
	for _, r := range done {
		r.giveUp(e)
		if n := r.next.Load(); n != nil {
			n.handing.Store(false) // Close did, unless a reload added it since
			continue
		}
		if !slices.ContainsFunc(set.all(), func(x *rule) bool { return x.cfg.Name == r.cfg.Name }) {
			e.m.deleteRule(r.cfg.Name)
		}
		e.logger.Info("aggregation rule removed by a reload has written its last interval", "rule", r.cfg.Name)
	}
}

// giveUp accounts a retired rule's groups as gone; a removed rule (no
// successor) forgets them. e.setMu is held.
func (r *rule) giveUp(e *Engine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retired = true
	for _, g := range r.groups {
		e.groups.Add(-1)
		r.m.groups.Sub(float64(len(g.out)))
		r.m.inputSeries.Sub(float64(len(g.inputs)))
	}
	if r.next.Load() == nil {
		r.groups = map[string]*group{}
	}
}

// forgetPrev lets a successor's predecessor go once its inputs would have
// expired anyway, folding the totals its groups carry into theirs. r.mu is
// held.
func (r *rule) forgetPrev(now int64) {
	if r.prev == nil || r.handing.Load() || now-r.from < inputExpiry.Milliseconds() {
		return
	}
	for _, g := range r.groups {
		if g.carry == nil {
			continue
		}
		t, th := carried(g.carryFrom, g.carry)
		g.total += t
		if th != nil {
			_ = addInto(&g.totalH, th)
		}
		g.carry, g.carryFrom = nil, nil
	}
	r.prev = nil
}

// sameOutputs returns the group of key of r, or of its own predecessors
// when r has none (a version replaced before it took anything), when it
// writes the same output series as g (a group of r's successor): g then
// continues its counter total instead of restarting the series from 0,
// which rate() would read as no increase until the new total passed the
// old one. Locks go from successor to predecessor.
func (r *rule) sameOutputs(key []byte, g *group) (*rule, *group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pg := r.groups[string(key)]
	if pg == nil {
		if r.prev != nil {
			return r.prev.sameOutputs(key, g)
		}
		return nil, nil
	}
	if pg.kind != kindCounter || pg.hist != g.hist || len(pg.out) != len(g.out) {
		return nil, nil
	}
	for i := range pg.out {
		if !labels.Equal(pg.out[i].labels, g.out[i].labels) {
			return nil, nil
		}
	}
	return r, pg
}

// carried is what group c of a predecessor (from) adds to its successor's
// counter outputs: its total, the increases of its intervals still open
// and what it carries itself (reloads in a row). Locks go from successor
// to predecessor: the caller holds its own rule's lock, not from's.
func carried(from *rule, c *group) (float64, *histogram.FloatHistogram) {
	from.mu.Lock()
	defer from.mu.Unlock()
	t, th := c.total, copyH(c.totalH)
	for _, w := range c.windows {
		t += w.delta
		if w.deltaH != nil {
			_ = addInto(&th, w.deltaH)
		}
	}
	if c.carry != nil {
		t2, th2 := carried(c.carryFrom, c.carry)
		t += t2
		if th2 != nil {
			_ = addInto(&th, th2)
		}
	}
	return t, th
}

// addCarry adds what g carries to the output values of one of its closing
// intervals (vals, or fh for native histograms, which it does not
// modify). g's rule's lock is held.
func addCarry(g *group, vals []float64, fh *histogram.FloatHistogram) *histogram.FloatHistogram {
	t, th := carried(g.carryFrom, g.carry)
	for i := range vals {
		vals[i] += t
	}
	if fh == nil || th == nil {
		return fh
	}
	sum := fh.Copy()
	if _, _, _, err := sum.Add(th); err != nil {
		return fh
	}
	return sum
}

// newest is the timestamp of the entry's newest sample or histogram
// (math.MinInt64 without any).
func (p *parsed) newest() int64 {
	if p.newestOK {
		return p.newestT
	}
	t := int64(math.MinInt64)
	for _, s := range p.samples {
		t = max(t, s.t)
	}
	for _, h := range p.hists {
		if ht, ok := histTimestamp(h); ok {
			t = max(t, ht)
		}
	}
	p.newestT, p.newestOK = t, true
	return t
}

// histTimestampField is the field number of a histogram's timestamp in
// Remote Write (1.0 and 2.0 alike).
const histTimestampField = 15

// histTimestamp reads the timestamp of an encoded histogram message.
func histTimestamp(b []byte) (int64, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == histTimestampField && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			return int64(v), m >= 0
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, false
		}
		b = b[m:]
	}
	return 0, false
}
