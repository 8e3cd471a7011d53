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
		tn   *tenantState
		name string
	)
	for i := range ss {
		s := &ss[i]
		s.tn, s.m = nil, nil
		if tn == nil || s.Tenant != name {
			t.mu.RLock()
			tn, name = t.tenants[s.Tenant], s.Tenant
			t.mu.RUnlock()
			if tn == nil {
				continue
			}
		}
		tn.mu.RLock()
		m := tn.metrics[s.Metric]
		tn.mu.RUnlock()
		if m == nil {
			continue
		}
		s.tn, s.m = tn, m
		if p := m.probe.Load(); p != nil && s.Hash != 0 {
			sl := *p
			prefetch.Line(uintptr(unsafe.Pointer(&sl[int(mix(fixKey(s.Hash)))&(len(sl)-1)])))
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
	sl := set.slots
	p := m.probe.Load()
	if len(sl) == 0 {
		if p != nil {
			m.probe.Store(nil)
		}
		return
	}
	if p != nil && len(*p) == len(sl) && &(*p)[0] == &sl[0] {
		return
	}
	m.probe.Store(&sl)
}
