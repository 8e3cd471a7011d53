package cardinality

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// Run rotates sub-windows, evicts idle state, refreshes tenant totals and
// near-limit gauges every RefreshInterval and writes a snapshot every
// SnapshotInterval (when SnapshotPath is set). It blocks until ctx is done
// and returns nil then; Close writes the final snapshot.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.RefreshInterval)
	defer tick.Stop()
	lastSnap := t.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := t.now()
		t.Rotate(now)
		if t.cfg.SnapshotPath != "" && now.Sub(lastSnap) >= t.cfg.SnapshotInterval {
			lastSnap = now
			if err := t.WriteSnapshot(t.cfg.SnapshotPath); err != nil {
				t.logger.Warn("cardinality snapshot failed", "path", t.cfg.SnapshotPath, "err", err)
			}
		}
	}
}

// Close writes the final snapshot when SnapshotPath is set. The Tracker
// stays usable; Close only persists.
func (t *Tracker) Close(ctx context.Context) error {
	if t.cfg.SnapshotPath == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("final cardinality snapshot: %w", err)
	}
	if err := t.WriteSnapshot(t.cfg.SnapshotPath); err != nil {
		return fmt.Errorf("final cardinality snapshot: %w", err)
	}
	return nil
}

// Rotate advances to now's sub-window: when a new sub-window started since
// the last call it frees expired sketches and evicts series and label values
// idle for a whole window, then it refreshes tenant totals and gauges. Run
// calls it; tests call it to move time explicitly.
func (t *Tracker) Rotate(now time.Time) {
	cur := epochOf(now, t.sub)
	if last := t.lastSweep.Load(); cur > last && t.lastSweep.CompareAndSwap(last, cur) {
		t.sweep(cur, now)
	}
	t.refresh(now)
}

func (t *Tracker) tenantList() []*tenantState {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*tenantState, 0, len(t.tenants))
	for _, tn := range t.tenants {
		out = append(out, tn)
	}
	return out
}

func (tn *tenantState) metricList() []*metricState {
	tn.mu.RLock()
	defer tn.mu.RUnlock()
	out := make([]*metricState, 0, len(tn.metrics))
	for _, m := range tn.metrics {
		out = append(out, m)
	}
	return out
}

// sweep frees state outside the window ending at cur.
func (t *Tracker) sweep(cur int64, now time.Time) {
	idleBefore := uint32(max(cur-int64(t.n)+1, 0))
	for _, tn := range t.tenantList() {
		var empty []*metricState
		for _, m := range tn.metricList() {
			m.mu.Lock()
			if t.sweepMetric(m, cur, idleBefore) {
				empty = append(empty, m)
			}
			m.mu.Unlock()
		}
		tn.mu.Lock()
		for _, m := range empty {
			m.mu.Lock()
			if !m.dead && m.series.slots == nil && m.refused.slots == nil && (m.admitted == nil || m.admitted.len() == 0) {
				m.dead = true
				delete(tn.metrics, m.name)
				t.m.trackedMetrics.Set(float64(t.nMetrics.Add(-1)))
				t.m.labelPairs.Set(float64(t.nLabelPairs.Add(-int64(len(m.labels)))))
			}
			m.mu.Unlock()
		}
		tn.mu.Unlock()
		tn.skMu.Lock()
		tn.demand.expire(cur, t.n)
		tn.admitted.expire(cur, t.n)
		tn.refused.expire(cur, t.n)
		for p, ps := range tn.peers {
			if now.Sub(ps.at) > t.cfg.PeerSketchTTL {
				delete(tn.peers, p)
			}
		}
		tn.skMu.Unlock()
	}
	// Drop empty tenants. Marking one dead and deleting it happen under t.mu
	// together, so an Observe that finds it dead and retries creates a new
	// one.
	t.mu.Lock()
	for name, tn := range t.tenants {
		tn.mu.Lock()
		tn.skMu.Lock()
		empty := len(tn.metrics) == 0 && tn.demand.slots == nil && tn.admitted.slots == nil &&
			tn.refused.slots == nil && len(tn.peers) == 0
		tn.skMu.Unlock()
		if empty {
			tn.dead = true
			delete(t.tenants, name)
		}
		tn.mu.Unlock()
	}
	t.m.tenants.Set(float64(len(t.tenants)))
	t.mu.Unlock()
	t.m.admitted.Set(float64(t.nAdmitted.Load()))
}

// sweepMetric expires m's sketches and idle entries; it reports whether m
// holds nothing any more. Called with m.mu.
func (t *Tracker) sweepMetric(m *metricState, cur int64, idleBefore uint32) bool {
	live := m.series.expire(cur, t.n)
	m.refused.expire(cur, t.n)
	if int64(m.seenEpoch) != cur {
		m.seen.reset() // only the current sub-window's series matter
	}
	if m.admitted != nil {
		t.nAdmitted.Add(-int64(m.admitted.evictBefore(idleBefore)))
		live = live || m.admitted.len() > 0
	}
	m.publishProbe()
	for name, ls := range m.labels {
		l := ls.values.expire(cur, t.n)
		if ls.drop != nil {
			ls.drop.without.expire(cur, t.n) // no live values: no series carries the label, nothing to drop
		}
		if ls.admitted != nil {
			ls.admitted.evictBefore(idleBefore)
			l = l || ls.admitted.len() > 0
		}
		if !l {
			delete(m.labels, name)
			t.m.labelPairs.Set(float64(t.nLabelPairs.Add(-1)))
		}
	}
	return !live
}

// peerSketch is one peer's admitted-series sketch of a tenant.
type peerSketch struct {
	sk *hyperloglog.Sketch
	at time.Time
}

// TenantSketch returns this ingester's admitted-series sketch of tenant over
// the window ending at now, encoded, for peers to merge with
// MergePeerSketch. An unknown tenant yields an empty sketch.
func (t *Tracker) TenantSketch(tenant string, now time.Time) ([]byte, error) {
	t.mu.RLock()
	tn := t.tenants[tenant]
	t.mu.RUnlock()
	var sk sketch
	if tn != nil {
		tn.skMu.Lock()
		err := tn.admitted.mergeInto(&sk, epochOf(now, t.sub), t.n, t.cfg.Precision)
		tn.skMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("merge tenant %q sketch: %w", tenant, err)
		}
	}
	return sk.toHLL(t.cfg.Precision).MarshalBinary()
}

// TenantSketches returns TenantSketch for every tracked tenant, keyed by
// tenant: what an ingester sends its peers every sync.
func (t *Tracker) TenantSketches(now time.Time) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, tn := range t.tenantList() {
		b, err := t.TenantSketch(tn.name, now)
		if err != nil {
			return nil, err
		}
		out[tn.name] = b
	}
	return out, nil
}

// MergePeerSketch records peer's admitted-series sketch of tenant (from the
// peer's TenantSketch). It replaces what that peer sent before, so sketches
// are not merged twice; the tenant's cluster-wide total becomes the merge of
// the local sketch and every peer's sketch younger than PeerSketchTTL.
func (t *Tracker) MergePeerSketch(peer, tenant string, data []byte, now time.Time) error {
	var sk hyperloglog.Sketch
	if err := sk.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("decode sketch of tenant %q from peer %q: %w", tenant, peer, err)
	}
	if p := precisionOf(data); p != t.cfg.Precision {
		return fmt.Errorf("sketch of tenant %q from peer %q has precision %d, want %d: %w", tenant, peer, p, t.cfg.Precision, ErrIncompatible)
	}
	tn := t.tenant(tenant)
	tn.skMu.Lock()
	if tn.peers == nil {
		tn.peers = map[string]peerSketch{}
	}
	tn.peers[peer] = peerSketch{sk: &sk, at: now}
	tn.skMu.Unlock()
	t.refreshTenant(tn, now)
	return nil
}

// ForgetPeer drops every sketch received from peer, e.g. when it leaves.
func (t *Tracker) ForgetPeer(peer string) {
	for _, tn := range t.tenantList() {
		tn.skMu.Lock()
		delete(tn.peers, peer)
		tn.skMu.Unlock()
	}
}

// BeginTransfer marks a ring-change state transfer as in progress until the
// returned func is called. Meanwhile, with FailOpenDuringTransfer, series an
// enforced limit would refuse are admitted and counted.
func (t *Tracker) BeginTransfer() (done func()) {
	t.m.transfers.Set(float64(t.transfers.Add(1)))
	var once bool
	return func() {
		if !once {
			once = true
			t.m.transfers.Set(float64(t.transfers.Add(-1)))
		}
	}
}

// clusterSketch merges tn's local admitted sketch with its live peers'.
func (t *Tracker) clusterSketch(tn *tenantState, now time.Time, ring func(*tenantState) *ring) *sketch {
	var local sketch
	tn.skMu.Lock()
	defer tn.skMu.Unlock()
	_ = ring(tn).mergeInto(&local, epochOf(now, t.sub), t.n, t.cfg.Precision)
	if len(tn.peers) == 0 {
		return &local
	}
	local.promote(t.cfg.Precision)
	sk := local.hll
	for _, ps := range tn.peers {
		if now.Sub(ps.at) <= t.cfg.PeerSketchTTL {
			_ = sk.Merge(ps.sk) // precision checked on receipt
		}
	}
	return &local
}

// refreshTenant recomputes tn's cluster-wide admitted total.
func (t *Tracker) refreshTenant(tn *tenantState, now time.Time) {
	pending := tn.newSince.Load()
	est := t.clusterSketch(tn, now, func(tn *tenantState) *ring { return &tn.admitted }).estimate()
	tn.cluster.Store(int64(est))
	tn.newSince.Add(-pending)
}

type nearLimit struct {
	tenant, metric, limit string
	ratio                 float64
}

// refresh recomputes tenant totals of tenant-limited tenants and the
// near-limit gauges.
func (t *Tracker) refresh(now time.Time) {
	lim := t.limits.Load()
	var near []nearLimit
	for _, tn := range t.tenantList() {
		if tl := lim.tenantLimit(tn.name); tl.max > 0 {
			t.refreshTenant(tn, now)
			if r := float64(tn.cluster.Load()) / float64(tl.max); r > 0.8 {
				near = append(near, nearLimit{tn.name, "", LimitSeriesPerTenant, r})
			}
		}
		for _, m := range tn.metricList() {
			m.mu.Lock()
			if l := m.lim.seriesPerMetric.max; l > 0 && m.admitted != nil && !m.lim.exempt {
				if r := float64(m.admitted.len()) / float64(l); r > 0.8 {
					near = append(near, nearLimit{tn.name, m.name, LimitSeriesPerMetric, r})
				}
			}
			if l := m.lim.valuesPerLabel.max; l > 0 && !m.lim.exempt {
				best := 0
				for _, ls := range m.labels {
					if ls.admitted != nil {
						best = max(best, ls.admitted.len())
					}
				}
				if r := float64(best) / float64(l); r > 0.8 {
					near = append(near, nearLimit{tn.name, m.name, LimitValuesPerLabel, r})
				}
			}
			m.mu.Unlock()
		}
	}
	slices.SortFunc(near, func(a, b nearLimit) int {
		if a.ratio != b.ratio {
			if a.ratio > b.ratio {
				return -1
			}
			return 1
		}
		if a.tenant != b.tenant {
			if a.tenant < b.tenant {
				return -1
			}
			return 1
		}
		if a.metric < b.metric {
			return -1
		}
		if a.metric > b.metric {
			return 1
		}
		return 0
	})
	if len(near) > t.cfg.NearLimitMaxSeries {
		near = near[:t.cfg.NearLimitMaxSeries]
	}
	t.m.nearLimit.Reset()
	for _, n := range near {
		t.m.nearLimit.WithLabelValues(labelValue(n.tenant), labelValue(n.metric), n.limit).Set(n.ratio)
	}
	t.m.admitted.Set(float64(t.nAdmitted.Load()))
}
