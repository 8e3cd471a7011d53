package cardinality

import (
	"unsafe"

	"github.com/promgov/promgov/internal/prefetch"
)

// Prefetch prepares the series of a batch for Observe: it looks up each
// series' tenant and metric (remembered in the Series, so Observe does not
// look them up again) and starts loading the slot of the series' hash in
// the metric's set of series. Observe then finds that slot in the cache:
// the probes of a batch, each one random memory read, overlap instead of
// stalling one after the other. Call it on a few (8-32) series, then
// Observe each of them, unchanged, in order; a series whose tenant or
// metric is not tracked yet is simply not prepared. Safe for concurrent
// use; it changes nothing in the tracker.
func (t *Tracker) Prefetch(ss []Series) {
	var (
		tn     *tenantState
		name   string
		m      *metricState
		metric string
	)
	// One increment of the shared counter for the batch, not one per
	// series (Observe skips the series counted here).
	t.m.observed.Add(float64(len(ss)))
	// First the metrics, then their slots: the slot's address depends on
	// the metric's state, so their misses overlap best in two passes.
	// Senders send a metric's series together: a series of the previous
	// one's metric reuses its lookup (no lock; Observe checks that the
	// metric is still alive under its lock). The tenant's read lock is
	// held across the batch's run of series of that tenant (a push has
	// one), not taken per lookup: its atomic counter is shared by every
	// core pushing, and senders that interleave metrics made it a few
	// percent of the ingester's CPU.
	for i := range ss {
		s := &ss[i]
		s.tn, s.m, s.counted = nil, nil, true
		if tn == nil || s.Tenant != name {
			if tn != nil {
				tn.mu.RUnlock()
			}
			t.mu.RLock()
			tn, name, m = t.tenants[s.Tenant], s.Tenant, nil
			t.mu.RUnlock()
			if tn == nil {
				continue
			}
			tn.mu.RLock() // released when the tenant changes, or after the loop
		}
		if m == nil || s.Metric != metric {
			m, metric = tn.metrics[s.Metric], s.Metric
			if m == nil {
				continue
			}
			prefetch.Line(uintptr(unsafe.Pointer(&m.probeBase))) // with m.mu, which Observe locks
		}
		s.tn, s.m = tn, m
	}
	if tn != nil {
		tn.mu.RUnlock()
	}
	for i := range ss {
		s := &ss[i]
		if s.m == nil || s.Hash == 0 {
			continue
		}
		if base := s.m.probeBase.Load(); base != 0 {
			slot := mix(fixKey(s.Hash)) & s.m.probeMask.Load()
			prefetch.Line(base + uintptr(slot)*unsafe.Sizeof(hashSlot{}))
		}
	}
}

// publishProbe makes the slots Observe probes first for m visible to
// Prefetch. Called with m.mu, after every change of m's sets.
func (m *metricState) publishProbe() {
	set := &m.seen
	if m.admitted != nil {
		set = m.admitted
	}
	var base uintptr
	if len(set.slots) > 0 {
		base = uintptr(unsafe.Pointer(unsafe.SliceData(set.slots)))
	}
	mask := uint64(max(len(set.slots)-1, 0))
	if m.probeBase.Load() == base && m.probeMask.Load() == mask {
		return
	}
	m.probeMask.Store(mask)
	m.probeBase.Store(base)
}
