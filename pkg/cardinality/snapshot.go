package cardinality

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/promgov/promgov/internal/fileutil"
)

// ErrNotTracked is returned by ExportMetric for a metric this ingester does
// not track.
var ErrNotTracked = errors.New("metric not tracked")

// The magic of snapshots and exports is a prefix and a format version
// byte. Version 1 (before label-drop estimates) is still read; version 2
// adds, per label, its without ring and complete epoch.
var (
	snapshotMagic = []byte("PGCARDS")
	exportMagic   = []byte("PGCARDM")
)

const (
	formatV1      = 1
	formatV2      = 2
	formatCurrent = formatV2
)

// Records are the decoded form of snapshots and exports; merging a record
// into live state is the same for restore and handoff.
type slotRec struct {
	epoch int64
	sk    sketch
}

type entryRec struct {
	hash  uint64
	epoch uint32
}

type labelRec struct {
	name     string
	values   []slotRec
	hasSet   bool
	set      []entryRec
	without  []slotRec
	complete int64
}

type metricRec struct {
	name            string
	first           int64
	series, refused []slotRec
	rates           []rateSlot
	labels          []labelRec
	hasSet          bool
	admitted        []entryRec
}

// encodeRing writes r's live slots.
func encodeRing(e *encoder, r *ring, cur int64, n int) {
	count := 0
	for i := range r.slots {
		if live(r.slots[i].epoch, cur, n) {
			count++
		}
	}
	e.uvarint(uint64(count))
	for i := range r.slots {
		if s := &r.slots[i]; live(s.epoch, cur, n) {
			e.varint(s.epoch)
			e.sketch(&s.sk)
		}
	}
}

func decodeRing(d *decoder, p uint8) []slotRec {
	n := d.count(2, "slot")
	var out []slotRec
	for i := 0; i < n && d.err == nil; i++ {
		s := slotRec{epoch: d.varint(), sk: d.sketch(p)}
		if d.err == nil {
			out = append(out, s)
		}
	}
	return out
}

func encodeSet(e *encoder, s *hashSet) {
	if s == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(1)
	e.uvarint(uint64(s.len()))
	s.each(func(h uint64, ep uint32) {
		e.u64(h)
		e.uvarint(uint64(ep))
	})
}

func decodeSet(d *decoder) (bool, []entryRec) {
	switch d.uvarint() {
	case 0:
		return false, nil
	case 1:
	default:
		d.fail("set flag")
		return false, nil
	}
	n := d.count(9, "set entry")
	out := make([]entryRec, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, entryRec{hash: d.u64(), epoch: uint32(d.uvarint())})
	}
	return true, out
}

// encodeMetric writes m. Called with m.mu.
func (t *Tracker) encodeMetric(e *encoder, m *metricState, cur int64) {
	e.str(m.name)
	e.varint(m.first)
	encodeRing(e, &m.series, cur, t.n)
	encodeRing(e, &m.refused, cur, t.n)
	var rs []rateSlot
	for _, r := range m.rates.slots {
		if live(r.epoch, cur, t.n) {
			rs = append(rs, r)
		}
	}
	e.uvarint(uint64(len(rs)))
	for _, r := range rs {
		e.varint(r.epoch)
		e.uvarint(r.samples)
		e.uvarint(r.bytes)
	}
	e.uvarint(uint64(len(m.labels)))
	for name, ls := range m.labels {
		e.str(name)
		encodeRing(e, &ls.values, cur, t.n)
		encodeSet(e, ls.admitted)
		if ls.drop != nil {
			encodeRing(e, &ls.drop.without, cur, t.n)
			e.varint(ls.drop.complete)
		} else {
			// No without sketches: the series counted so far are missing
			// from them.
			e.uvarint(0)
			e.varint(cur + 1)
		}
	}
	encodeSet(e, m.admitted)
}

// decodeMetric reads what encodeMetric wrote in format version v.
func decodeMetric(d *decoder, p, lp uint8, v int) metricRec {
	r := metricRec{name: d.str(), first: d.varint()}
	r.series = decodeRing(d, p)
	r.refused = decodeRing(d, p)
	n := d.count(3, "rate slot")
	for i := 0; i < n && d.err == nil; i++ {
		r.rates = append(r.rates, rateSlot{epoch: d.varint(), samples: d.uvarint(), bytes: d.uvarint()})
	}
	n = d.count(3, "label")
	for i := 0; i < n && d.err == nil; i++ {
		l := labelRec{name: d.str()}
		l.values = decodeRing(d, lp)
		l.hasSet, l.set = decodeSet(d)
		if v >= formatV2 {
			l.without = decodeRing(d, withoutPrecision(p, lp))
			l.complete = d.varint()
		}
		r.labels = append(r.labels, l)
	}
	r.hasSet, r.admitted = decodeSet(d)
	if v < formatV2 {
		// Version 1 has no without sketches: none of its series are in them.
		c := newerThan(r.series)
		for i := range r.labels {
			r.labels[i].complete = c
		}
	}
	return r
}

// newerThan returns the first epoch after every slot of slots: the complete
// epoch of a without ring that misses the series of slots.
func newerThan(slots []slotRec) int64 {
	c := int64(math.MinInt64)
	for _, s := range slots {
		if s.epoch >= c {
			c = s.epoch + 1
		}
	}
	return c
}

func (t *Tracker) header(e *encoder, magic []byte) {
	e.raw(magic)
	e.raw([]byte{formatCurrent})
	e.uvarint(uint64(t.cfg.Precision))
	e.uvarint(uint64(t.cfg.LabelPrecision))
	e.uvarint(uint64(t.sub))
}

// checkHeader reads and checks the header and returns the format version.
func (t *Tracker) checkHeader(d *decoder, magic []byte) (int, error) {
	n := uint64(len(magic)) + 1
	got := d.raw(n, n, "magic")
	if d.err != nil || !bytes.Equal(got[:len(magic)], magic) {
		return 0, fmt.Errorf("bad magic: %w", ErrCorrupt)
	}
	v := int(got[len(magic)])
	if v != formatV1 && v != formatV2 {
		return 0, fmt.Errorf("format version %d, this build reads %d and %d: %w", v, formatV1, formatV2, ErrIncompatible)
	}
	p, lp, sub := d.uvarint(), d.uvarint(), d.uvarint()
	if d.err != nil {
		return 0, d.err
	}
	if p != uint64(t.cfg.Precision) || lp != uint64(t.cfg.LabelPrecision) || sub != uint64(t.sub) {
		return 0, fmt.Errorf("written with precision %d, label_precision %d, sub-window %v; configured %d, %d, %v: %w",
			p, lp, time.Duration(sub), t.cfg.Precision, t.cfg.LabelPrecision, t.sub, ErrIncompatible)
	}
	return v, nil
}

// Snapshot writes the whole state (sketches, rates, admitted sets; not peer
// sketches, which peers resend) to w.
func (t *Tracker) Snapshot(w io.Writer) error {
	cur := epochOf(t.now(), t.sub)
	e := newEncoder(w)
	t.header(e, snapshotMagic)
	tenants := t.tenantList()
	e.uvarint(uint64(len(tenants)))
	for _, tn := range tenants {
		e.str(tn.name)
		tn.skMu.Lock()
		encodeRing(e, &tn.demand, cur, t.n)
		encodeRing(e, &tn.admitted, cur, t.n)
		encodeRing(e, &tn.refused, cur, t.n)
		tn.skMu.Unlock()
		ms := tn.metricList()
		e.uvarint(uint64(len(ms)))
		for _, m := range ms {
			m.mu.Lock()
			t.encodeMetric(e, m, cur)
			m.mu.Unlock()
		}
	}
	return e.finish()
}

// WriteSnapshot writes Snapshot to path atomically: a temporary file in the
// same directory, synced, then renamed over path.
func (t *Tracker) WriteSnapshot(path string) error {
	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	size, err := fileutil.WriteAtomic(path, t.Snapshot)
	if err != nil {
		t.m.snapshotErrors.Inc()
		return fmt.Errorf("write snapshot %s: %w", path, err)
	}
	t.m.snapshotTime.Set(float64(t.now().Unix()))
	t.m.snapshotBytes.Set(float64(size))
	return nil
}

func (t *Tracker) restoreFile(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	return t.Restore(data)
}

// Restore merges a snapshot written by Snapshot into the tracker. State
// older than the window is dropped. Nothing is merged unless the whole
// snapshot decodes.
func (t *Tracker) Restore(data []byte) error {
	d, err := newDecoder(data)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	v, err := t.checkHeader(d, snapshotMagic)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	type tenantRec struct {
		name                      string
		demand, admitted, refused []slotRec
		metrics                   []metricRec
	}
	var recs []tenantRec
	n := d.count(4, "tenant")
	for i := 0; i < n && d.err == nil; i++ {
		r := tenantRec{name: d.str()}
		r.demand = decodeRing(d, t.cfg.Precision)
		r.admitted = decodeRing(d, t.cfg.Precision)
		r.refused = decodeRing(d, t.cfg.Precision)
		nm := d.count(6, "metric")
		for j := 0; j < nm && d.err == nil; j++ {
			r.metrics = append(r.metrics, decodeMetric(d, t.cfg.Precision, t.cfg.LabelPrecision, v))
		}
		recs = append(recs, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("restore snapshot: %w", d.err)
	}
	now := t.now()
	cur := epochOf(now, t.sub)
	for _, r := range recs {
		tn := t.tenant(r.name)
		tn.skMu.Lock()
		t.mergeSlots(&tn.demand, r.demand, cur, t.cfg.Precision)
		t.mergeSlots(&tn.admitted, r.admitted, cur, t.cfg.Precision)
		t.mergeSlots(&tn.refused, r.refused, cur, t.cfg.Precision)
		tn.skMu.Unlock()
		for i := range r.metrics {
			t.mergeMetric(tn, &r.metrics[i], now)
		}
		t.refreshTenant(tn, now)
	}
	t.m.admitted.Set(float64(t.nAdmitted.Load()))
	return nil
}

func (t *Tracker) mergeSlots(r *ring, slots []slotRec, cur int64, p uint8) {
	for _, s := range slots {
		if live(s.epoch, cur, t.n) {
			_ = r.mergeSlot(s.epoch, t.n, p, &s.sk) // precision checked on decode
		}
	}
}

// mergeMetric merges rec into tn's state of the metric, creating it.
func (t *Tracker) mergeMetric(tn *tenantState, rec *metricRec, now time.Time) {
	cur := epochOf(now, t.sub)
	idleBefore := uint32(max(cur-int64(t.n)+1, 0))
	for {
		m, untracked := t.metric(tn, rec.name, time.Unix(0, rec.first))
		if untracked {
			return
		}
		if m == nil {
			tn = t.tenant(tn.name)
			continue
		}
		m.mu.Lock()
		if m.dead {
			m.mu.Unlock()
			continue
		}
		t.refreshLimits(tn, m)
		m.first = min(m.first, rec.first)
		if t.cfg.LabelDropEstimates {
			t.mergeCompleteness(m, rec)
		}
		ownComplete := int64(math.MinInt64) // what m's own series leave out of a label new to m
		if last, ok := m.series.maxEpoch(); ok {
			ownComplete = last + 1
		}
		t.mergeSlots(&m.series, rec.series, cur, t.cfg.Precision)
		t.mergeSlots(&m.refused, rec.refused, cur, t.cfg.Precision)
		for _, r := range rec.rates {
			if live(r.epoch, cur, t.n) {
				m.rates.add(r.epoch, t.n, r.samples, r.bytes)
			}
		}
		for i := range rec.labels {
			l := &rec.labels[i]
			ls := m.labels[l.name]
			if ls == nil {
				if ls = t.newLabel(m, l.name, max(l.complete, ownComplete)); ls == nil {
					continue
				}
			} else if ls.drop != nil {
				ls.drop.complete = max(ls.drop.complete, l.complete)
			}
			t.mergeSlots(&ls.values, l.values, cur, t.cfg.LabelPrecision)
			if ls.drop != nil {
				t.mergeSlots(&ls.drop.without, l.without, cur, t.cfg.withoutPrecision())
			}
			if ls.admitted != nil {
				for _, e := range l.set {
					if e.epoch >= idleBefore {
						ls.admitted.add(e.hash, e.epoch)
					}
				}
			}
		}
		if m.admitted != nil {
			for _, e := range rec.admitted {
				if e.epoch >= idleBefore {
					if !m.admitted.contains(e.hash) {
						t.nAdmitted.Add(1)
					}
					m.admitted.add(e.hash, e.epoch)
				}
			}
		}
		m.mu.Unlock()
		return
	}
}

// mergeCompleteness marks m's labels that rec does not know: rec's series
// are missing from their without rings (rec's owner never saw the label, so
// it fed no without ring of it). Called with m.mu, before rec is merged.
func (t *Tracker) mergeCompleteness(m *metricState, rec *metricRec) {
	c := newerThan(rec.series)
	if c == math.MinInt64 {
		return
	}
	for name, ls := range m.labels {
		if ls.drop != nil && !slices.ContainsFunc(rec.labels, func(l labelRec) bool { return l.name == name }) {
			ls.drop.complete = max(ls.drop.complete, c)
		}
	}
}

// ExportMetric encodes this ingester's state of one (tenant, metric) for the
// metric's new owner after a ring change, which merges it with ImportMetric.
// It returns ErrNotTracked when there is none.
func (t *Tracker) ExportMetric(tenant, metric string, now time.Time) ([]byte, error) {
	t.mu.RLock()
	tn := t.tenants[tenant]
	t.mu.RUnlock()
	if tn == nil {
		return nil, fmt.Errorf("export %q of tenant %q: %w", metric, tenant, ErrNotTracked)
	}
	tn.mu.RLock()
	m := tn.metrics[metric]
	tn.mu.RUnlock()
	if m == nil {
		return nil, fmt.Errorf("export %q of tenant %q: %w", metric, tenant, ErrNotTracked)
	}
	var buf bytes.Buffer
	e := newEncoder(&buf)
	t.header(e, exportMagic)
	e.str(tenant)
	m.mu.Lock()
	t.encodeMetric(e, m, epochOf(now, t.sub))
	m.mu.Unlock()
	if err := e.finish(); err != nil {
		return nil, fmt.Errorf("export %q of tenant %q: %w", metric, tenant, err)
	}
	return buf.Bytes(), nil
}

// ImportMetric merges state exported by a peer's ExportMetric: sketches are
// merged per sub-window, admitted sets are united, rates added. It returns
// the tenant and metric imported.
func (t *Tracker) ImportMetric(data []byte, now time.Time) (tenant, metric string, err error) {
	d, err := newDecoder(data)
	if err != nil {
		return "", "", fmt.Errorf("import metric: %w", err)
	}
	v, err := t.checkHeader(d, exportMagic)
	if err != nil {
		return "", "", fmt.Errorf("import metric: %w", err)
	}
	tenant = d.str()
	rec := decodeMetric(d, t.cfg.Precision, t.cfg.LabelPrecision, v)
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return "", "", fmt.Errorf("import metric: %w", d.err)
	}
	t.mergeMetric(t.tenant(tenant), &rec, now)
	return tenant, rec.name, nil
}

// ForgetMetric drops this ingester's state of one (tenant, metric), e.g.
// after its new owner imported it. Tenant sketches keep it until it ages out.
func (t *Tracker) ForgetMetric(tenant, metric string) {
	t.mu.RLock()
	tn := t.tenants[tenant]
	t.mu.RUnlock()
	if tn == nil {
		return
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	m := tn.metrics[metric]
	if m == nil {
		return
	}
	m.mu.Lock()
	m.dead = true
	delete(tn.metrics, metric)
	if m.admitted != nil {
		t.nAdmitted.Add(-int64(m.admitted.len()))
	}
	t.m.trackedMetrics.Set(float64(t.nMetrics.Add(-1)))
	t.m.labelPairs.Set(float64(t.nLabelPairs.Add(-int64(len(m.labels)))))
	m.mu.Unlock()
}

// MetricKey names one tracked (tenant, metric).
type MetricKey struct {
	// Tenant and Metric identify the metric.
	Tenant, Metric string
}

// TrackedMetrics lists every (tenant, metric) this ingester tracks, e.g. for
// the previous owner to offer the metrics a ring change moved away.
func (t *Tracker) TrackedMetrics() []MetricKey {
	var out []MetricKey
	for _, tn := range t.tenantList() {
		tn.mu.RLock()
		for name := range tn.metrics {
			out = append(out, MetricKey{Tenant: tn.name, Metric: name})
		}
		tn.mu.RUnlock()
	}
	return out
}
