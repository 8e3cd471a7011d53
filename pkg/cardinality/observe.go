package cardinality

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// labelObs is one label of an observed series: its tracked state (nil when
// untracked) and its value's hash.
type labelObs struct {
	ls   *labelState
	name string
	vh   uint64
	hp   uint64 // pair hash (pairHash); 0 when label-drop estimates are off
}

// verdict is the outcome of the limit checks on a new series.
type verdict struct {
	kind     int    // limit kind of the first violation, -1 if none
	shadow   bool   // every violation was in shadow mode
	label    string // label name for a values violation
	failOpen bool   // admitted only because a transfer is in progress
}

// Observe records one series of a batch and decides whether the limits admit
// it. It is the ingester hot path: callers pass the batch's time once as now.
// A series already admitted keeps flowing whatever the current counts; a new
// series is refused by the first enforced limit it would exceed. Sketches
// count every attempt, refused ones included.
func (t *Tracker) Observe(s *Series, now time.Time) Decision {
	if s.counted {
		s.counted = false
	} else {
		t.m.observed.Inc()
	}
	epoch := epochOf(now, t.sub)
	h := s.Hash
	if h == 0 {
		h = s.labels().Hash()
	}
	if tn, m := s.tn, s.m; m != nil {
		s.tn, s.m = nil, nil // a hint from Prefetch, for this observation only
		if tn.name == s.Tenant && m.name == s.Metric {
			if d, ok := t.observeMetric(tn, m, s, h, epoch); ok {
				return d
			}
		}
	}
	for {
		tn := t.tenant(s.Tenant)
		m, untracked := t.metric(tn, s.Metric, now)
		if m == nil && !untracked {
			continue // tenant swept concurrently; look it up again
		}
		if m == nil {
			t.observeTenant(tn, epoch, h, true, false)
			return Decision{Admit: true}
		}
		d, ok := t.observeMetric(tn, m, s, h, epoch)
		if ok {
			return d
		}
	}
}

// labels returns s.Labels, built from s.LabelsFrom when empty.
func (s *Series) labels() labels.Labels {
	if s.Labels.IsEmpty() && s.LabelsFrom != nil {
		return s.LabelsFrom.Labels()
	}
	return s.Labels
}

// observeMetric does Observe's work under m.mu. ok is false when m was swept
// concurrently and the caller must look it up again.
func (t *Tracker) observeMetric(tn *tenantState, m *metricState, s *Series, h uint64, epoch int64) (d Decision, ok bool) {
	m.mu.Lock()
	if m.dead {
		m.mu.Unlock()
		return Decision{}, false
	}
	t.refreshLimits(tn, m)
	m.rates.add(epoch, t.n, uint64(max(s.Samples, 0)), uint64(max(s.Bytes, 0)))

	existing, seenThisEpoch := false, false
	if m.admitted != nil {
		var prev uint32
		prev, existing = m.admitted.touch(h, uint32(epoch))
		seenThisEpoch = existing && prev == uint32(epoch)
	} else {
		if m.seenEpoch != uint32(epoch) {
			m.seen.reset()
			m.seenEpoch = uint32(epoch)
		}
		// A series enters seen only once admitted (below): one refused
		// must be checked again on its next sample.
		_, seenThisEpoch = m.seen.touch(h, uint32(epoch))
	}
	if seenThisEpoch {
		// Admitted and already counted in this sub-window: every sketch
		// insert would be a no-op, and its label values were refreshed.
		m.mu.Unlock()
		return Decision{Admit: true}, true
	}

	var buf [16]labelObs
	obs := t.labelObs(m, s.labels(), buf[:0])

	v := verdict{kind: -1}
	if !existing && m.lim.limited() {
		v = t.check(tn, m, obs)
	}
	admit := v.kind < 0 || v.shadow || v.failOpen
	if admit && m.admitted == nil {
		m.seen.add(h, uint32(epoch))
	}
	if admit && !existing && m.admitted != nil && t.roomFor(m) {
		m.admitted.add(h, uint32(epoch))
		t.nAdmitted.Add(1)
		if m.lim.seriesPerTenant.max > 0 {
			tn.newSince.Add(1)
		}
	}
	m.series.insert(epoch, t.n, t.cfg.Precision, h)
	for _, o := range obs {
		if o.ls == nil {
			continue
		}
		o.ls.values.insert(epoch, t.n, t.cfg.LabelPrecision, o.vh)
		if admit && o.ls.admitted != nil && int64(o.ls.admitted.len()) < 2*m.lim.valuesPerLabel.max {
			o.ls.admitted.add(o.vh, uint32(epoch))
		}
	}
	if t.cfg.LabelDropEstimates {
		t.observeWithout(m, obs, epoch)
	}
	if v.kind >= 0 {
		m.refused.insert(epoch, t.n, t.cfg.Precision, h)
		d = Decision{Admit: admit, Limit: limitNames[v.kind], Shadow: admit, Message: t.message(tn, m, v)}
	} else {
		d = Decision{Admit: true}
	}
	m.publishProbe()
	m.mu.Unlock()

	t.observeTenant(tn, epoch, h, admit, v.kind >= 0)
	if v.kind >= 0 {
		shadow := 0
		if admit {
			shadow = 1
		}
		tn.refusals[v.kind][shadow].Inc()
		if v.failOpen {
			t.m.failOpen.Inc()
		}
	}
	return d, true
}

// roomFor bounds an admitted set that shadow mode or a failed-open transfer
// lets grow past its limit: at most twice the largest series limit.
func (t *Tracker) roomFor(m *metricState) bool {
	bound := max(m.lim.seriesPerMetric.max, m.lim.seriesPerTenant.max)
	return int64(m.admitted.len()) < 2*bound
}

// labelObs resolves the tracked label states of ls into buf, creating them
// while the label-pair cap allows. Called with m.mu.
func (t *Tracker) labelObs(m *metricState, ls labels.Labels, buf []labelObs) []labelObs {
	drop := t.cfg.LabelDropEstimates
	ls.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		st := m.labels[l.Name]
		if st == nil {
			st = t.newLabel(m, l.Name, observedComplete(m))
		}
		o := labelObs{ls: st, name: l.Name, vh: xxhash.Sum64String(l.Value)}
		if drop && l.Value != "" { // an empty value is an absent label
			nh := uint64(0)
			if st != nil {
				nh = st.drop.nameHash
			} else {
				nh = nameHash(l.Name) // untracked: still part of the label set
			}
			o.hp = pairHash(nh, o.vh)
		}
		buf = append(buf, o)
	})
	return buf
}

// observedComplete is the complete epoch of a label first seen on m now:
// the series m was observed with before (up to its newest sub-window) are
// missing from the new label's without ring, so its estimate is complete
// only once they are out of the window. A label that comes with the
// metric's first series is complete from the start (math.MinInt64).
func observedComplete(m *metricState) int64 {
	if last, ok := m.series.maxEpoch(); ok {
		return last + 1
	}
	return math.MinInt64
}

// nameHash is a label name's hash for pairHash. It is mixed once more than a
// value's hash, so that a="b" and b="a" do not make the same pair hash.
func nameHash(name string) uint64 { return mix64(xxhash.Sum64String(name)) }

// pairHash is the hash of one label pair, from its name's nameHash and its
// value's xxhash.
func pairHash(nameHash, valueHash uint64) uint64 { return mix64(nameHash ^ valueHash) }

// withoutHash is the hash of a label set without one of its pairs: sum is
// the sum of the set's pair hashes and hp the dropped pair's (0 drops
// nothing). The sum is order-independent and costs one addition per label,
// so every "without label i" hash of a series costs one subtraction. A sum
// of pair hashes is linear (S(A)+S(B) = S(A∪B) for disjoint A, B), and
// HyperLogLog takes the bucket from the top bits and the rank from the
// leading zeros of the rest, which must look independent between distinct
// sets: the splitmix64 finalizer destroys the linear structure, and two
// distinct label sets collide only when their sums do (probability 2^-64).
func withoutHash(sum, hp uint64) uint64 { return mix64(sum - hp) }

// mix64 is splitmix64's finalizer, a bijection with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// observeWithout feeds the label-drop sketches: for every tracked label the
// series carries, the series' label set without that label; for every
// tracked label it lacks, the series' label set itself (dropping an absent
// label leaves the series as it is). Called with m.mu.
func (t *Tracker) observeWithout(m *metricState, obs []labelObs, epoch int64) {
	var sum uint64
	for i := range obs {
		sum += obs[i].hp
	}
	m.obs++
	tracked := 0
	p := t.cfg.withoutPrecision()
	for i := range obs {
		if o := &obs[i]; o.ls != nil {
			tracked++
			o.ls.drop.stamp = m.obs
			o.ls.drop.without.insert(epoch, t.n, p, withoutHash(sum, o.hp))
		}
	}
	if tracked >= len(m.labels) {
		return // the common case: every series of a metric has the same label names
	}
	full := withoutHash(sum, 0)
	for _, ls := range m.labels {
		if ls.drop.stamp != m.obs {
			ls.drop.without.insert(epoch, t.n, p, full)
		}
	}
}

// newLabel tracks label name of m while the label-pair cap allows; complete
// is its without ring's complete epoch (labelDrop.complete).
func (t *Tracker) newLabel(m *metricState, name string, complete int64) *labelState {
	if t.nLabelPairs.Load() >= int64(t.cfg.MaxLabelPairs) {
		t.m.untracked.WithLabelValues("label").Inc()
		return nil
	}
	st := &labelState{}
	if t.cfg.LabelDropEstimates {
		st.drop = &labelDrop{nameHash: nameHash(name), complete: complete}
	}
	if !m.lim.exempt && m.lim.valuesPerLabel.max > 0 {
		st.admitted = &hashSet{}
	}
	if m.labels == nil {
		m.labels = map[string]*labelState{}
	}
	m.labels[strings.Clone(name)] = st
	t.m.labelPairs.Set(float64(t.nLabelPairs.Add(1)))
	return st
}

// check evaluates the limits for a series m has not admitted. Called with
// m.mu.
func (t *Tracker) check(tn *tenantState, m *metricState, obs []labelObs) verdict {
	v := verdict{kind: -1, shadow: true}
	violate := func(kind int, l limit, label string) {
		if v.kind < 0 || (v.shadow && !l.shadow) {
			v.kind, v.label = kind, label
		}
		v.shadow = v.shadow && l.shadow
	}
	if l := m.lim.seriesPerMetric; l.max > 0 && int64(m.admitted.len()) >= l.max {
		violate(kindSeriesPerMetric, l, "")
	}
	if l := m.lim.valuesPerLabel; l.max > 0 {
		for _, o := range obs {
			if o.ls != nil && o.ls.admitted != nil && int64(o.ls.admitted.len()) >= l.max && !o.ls.admitted.contains(o.vh) {
				violate(kindValuesPerLabel, l, o.name)
				break
			}
		}
	}
	if l := m.lim.seriesPerTenant; l.max > 0 && tn.cluster.Load()+tn.newSince.Load() >= l.max {
		violate(kindSeriesPerTenant, l, "")
	}
	if v.kind < 0 {
		v.shadow = false
		return v
	}
	if !v.shadow && t.cfg.FailOpenDuringTransfer && t.transfers.Load() > 0 {
		v.failOpen = true
	}
	return v
}

// message explains v, caching the text per metric, limit kind and outcome
// so that a flood of refusals does not allocate per series.
func (t *Tracker) message(tn *tenantState, m *metricState, v verdict) string {
	if v.kind == kindValuesPerLabel {
		return fmt.Sprintf("cardinality limit %s=%d reached for label %q of metric %q of tenant %q: %s",
			LimitValuesPerLabel, m.lim.valuesPerLabel.max, v.label, m.name, tn.name, suffix(v))
	}
	outcome := 0
	switch {
	case v.failOpen:
		outcome = 2
	case v.shadow:
		outcome = 1
	}
	if m.msgs == nil {
		m.msgs = &[3][3]string{}
	}
	if m.msgs[v.kind][outcome] == "" {
		m.msgs[v.kind][outcome] = t.text(tn, m, v.kind) + ": " + suffix(v)
	}
	return m.msgs[v.kind][outcome]
}

func (t *Tracker) text(tn *tenantState, m *metricState, kind int) string {
	switch kind {
	case kindSeriesPerTenant:
		return fmt.Sprintf("cardinality limit %s=%d reached for tenant %q (series of metric %q)",
			LimitSeriesPerTenant, m.lim.seriesPerTenant.max, tn.name, m.name)
	default:
		return fmt.Sprintf("cardinality limit %s=%d reached for metric %q of tenant %q",
			LimitSeriesPerMetric, m.lim.seriesPerMetric.max, m.name, tn.name)
	}
}

func suffix(v verdict) string {
	switch {
	case v.failOpen:
		return "admitted because a state transfer is in progress"
	case v.shadow:
		return "shadow mode, admitted"
	default:
		return "new series refused, existing series keep flowing"
	}
}

// observeTenant updates the tenant-wide sketches.
func (t *Tracker) observeTenant(tn *tenantState, epoch int64, h uint64, admitted, refused bool) {
	p := t.cfg.Precision
	tn.skMu.Lock()
	tn.demand.insert(epoch, t.n, p, h)
	if admitted {
		tn.admitted.insert(epoch, t.n, p, h)
	}
	if refused {
		tn.refused.insert(epoch, t.n, p, h)
	}
	tn.skMu.Unlock()
}
