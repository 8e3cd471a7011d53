package reservoir

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

// Reservoir is the per-metric series sample of one ingester. Offer is safe
// for concurrent use with itself, Sweep and Samples. A nil *Reservoir (off)
// takes nothing.
type Reservoir struct {
	cfg  Config
	next atomic.Int64 // unix nanoseconds the gate opens next

	mu      sync.RWMutex
	metrics map[key]*metric

	unsampled prometheus.Counter
}

type key struct{ tenant, metric string }

// metric is the sample of one (tenant, metric): parallel slices of at most
// k entries, unordered.
type metric struct {
	// threshold is the largest hash a new series may have to be taken:
	// MaxUint64 while fewer than k are held, else the largest held hash.
	threshold atomic.Uint64
	// last is when the metric was last offered (unix seconds).
	last atomic.Int64

	mu     sync.Mutex
	hashes []uint64
	seen   []int64  // unix seconds
	series [][]byte // labels (and metadata) fields, pkg/record form
}

// New returns the reservoir of cfg (validated by the caller), or nil when
// cfg.SeriesPerMetric is 0. Its gauges are registered on reg.
func New(cfg Config, reg prometheus.Registerer) *Reservoir {
	if cfg.SeriesPerMetric <= 0 {
		return nil
	}
	r := &Reservoir{cfg: cfg, metrics: make(map[key]*metric)}
	f := promauto.With(reg)
	r.unsampled = f.NewCounter(prometheus.CounterOpts{
		Name: "promgov_preview_reservoir_unsampled_offers_total",
		Help: "Offers of a metric the impact preview's reservoir did not sample because it holds max_metrics metrics.",
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_preview_reservoir_metrics",
		Help: "(Tenant, metric) pairs in the impact preview's reservoir.",
	}, func() float64 { return float64(r.Stats().Metrics) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_preview_reservoir_series",
		Help: "Series sampled in the impact preview's reservoir.",
	}, func() float64 { return float64(r.Stats().Series) })
	return r
}

// Offer feeds the series of one push: batch holds pkg/record entries and
// names[i] is the metric name of entry i (both may alias a request buffer;
// nothing is retained). When the gate (SampleInterval) is closed it returns
// at once.
func (r *Reservoir) Offer(tenant string, batch []byte, names []string, now time.Time) {
	if r == nil || len(names) == 0 {
		return
	}
	ns := now.UnixNano()
	if iv := int64(r.cfg.SampleInterval); iv > 0 {
		n := r.next.Load()
		if ns < n || !r.next.CompareAndSwap(n, ns+iv) {
			return
		}
	}
	sec := ns / int64(time.Second)
	var (
		name string
		m    *metric
	)
	it := record.NewIter(batch)
	for i := 0; it.Next() && i < len(names); i++ {
		if i == 0 || names[i] != name {
			name = names[i]
			m = r.metric(tenant, name, sec)
		}
		if m == nil {
			continue
		}
		e := it.Entry()
		if e.Hash > m.threshold.Load() {
			continue
		}
		m.offer(e.Hash, e.Series, sec, r.cfg.SeriesPerMetric)
	}
}

// metric returns the sample of (tenant, name), created when there is room;
// nil when the reservoir is full.
func (r *Reservoir) metric(tenant, name string, sec int64) *metric {
	k := key{tenant, name}
	r.mu.RLock()
	m := r.metrics[k]
	full := len(r.metrics) >= r.cfg.MaxMetrics
	r.mu.RUnlock()
	if m == nil && full {
		r.unsampled.Inc()
		return nil
	}
	if m == nil {
		r.mu.Lock()
		if m = r.metrics[k]; m == nil {
			if len(r.metrics) >= r.cfg.MaxMetrics {
				r.mu.Unlock()
				r.unsampled.Inc()
				return nil
			}
			m = &metric{}
			m.threshold.Store(math.MaxUint64)
			r.metrics[key{clone(tenant), clone(name)}] = m
		}
		r.mu.Unlock()
	}
	if m.last.Load() != sec {
		m.last.Store(sec)
	}
	return m
}

func clone(s string) string { return string([]byte(s)) }

// offer takes one series whose hash is at most the threshold. The slices
// are sorted by hash, so a series already held is found by binary search
// and the largest held hash is the last.
func (m *metric) offer(h uint64, series []byte, sec int64, k int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, found := slices.BinarySearch(m.hashes, h)
	if found {
		m.seen[i] = sec
		return
	}
	if len(m.hashes) >= k {
		if h >= m.hashes[len(m.hashes)-1] {
			return
		}
		last := len(m.hashes) - 1 // the largest leaves
		m.hashes, m.seen = m.hashes[:last], m.seen[:last]
		m.series[last] = nil
		m.series = m.series[:last]
	}
	m.hashes = slices.Insert(m.hashes, i, h)
	m.seen = slices.Insert(m.seen, i, sec)
	m.series = slices.Insert(m.series, i, keep(series))
	if len(m.hashes) >= k {
		m.threshold.Store(m.hashes[len(m.hashes)-1])
	}
}

// keep copies the labels and metadata fields of a series (not its samples).
func keep(series []byte) []byte {
	size := 0
	forFields(series, func(raw []byte) { size += len(raw) })
	out := make([]byte, 0, size)
	forFields(series, func(raw []byte) { out = append(out, raw...) })
	return out
}

// forFields calls fn with every labels or metadata field of series, raw
// (tag included).
func forFields(series []byte, fn func(raw []byte)) {
	b := series
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return
		}
		if num == record.FieldLabels || num == record.MetadataField {
			fn(b[:n+m])
		}
		b = b[n+m:]
	}
}

// Sweep drops the series not seen for MaxAge and the metrics left empty.
func (r *Reservoir) Sweep(now time.Time) {
	if r == nil {
		return
	}
	cut := now.Add(-r.cfg.MaxAge).Unix()
	r.mu.RLock()
	var empty []key
	for k, m := range r.metrics {
		if m.expire(cut) && m.last.Load() < cut {
			empty = append(empty, k)
		}
	}
	r.mu.RUnlock()
	if len(empty) == 0 {
		return
	}
	r.mu.Lock()
	for _, k := range empty {
		if m := r.metrics[k]; m != nil && m.last.Load() < cut && m.expire(cut) {
			delete(r.metrics, k)
		}
	}
	r.mu.Unlock()
}

// expire drops the entries last seen before cut and reports whether the
// sample is empty.
func (m *metric) expire(cut int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := 0
	for i := range m.hashes {
		if m.seen[i] >= cut {
			m.hashes[j], m.seen[j], m.series[j] = m.hashes[i], m.seen[i], m.series[i]
			j++
		}
	}
	if j < len(m.hashes) {
		clear(m.series[j:])
		m.hashes, m.seen, m.series = m.hashes[:j], m.seen[:j], m.series[:j]
		m.threshold.Store(math.MaxUint64) // room again: the next smallest live series enter
	}
	return j == 0
}

// Run sweeps every MaxAge/10 (at least every second) until ctx ends.
func (r *Reservoir) Run(ctx context.Context) error {
	if r == nil {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(max(r.cfg.MaxAge/10, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			r.Sweep(now)
		}
	}
}
