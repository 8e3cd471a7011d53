package ui

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promgov/promgov/pkg/cardinality"
)

// SortBytesRate orders the pages' metric lists by bytes/s (the analytics
// API has no such order; the snapshot has).
const SortBytesRate = "bytes_rate"

// Snapshot is a ranked copy of every metric's estimates (series, samples/s,
// bytes/s, refused series, limit; no labels, no sketches), taken from a
// cardinality.Source in one pass and shared by every page and the history
// sampler, so that a page view never estimates every metric again. It is
// refreshed every Config.SnapshotInterval by History.Run, and on demand
// when older than twice that (or never taken).
//
// Memory: one compact row per tracked metric (about 72 bytes plus the
// names, which are the tracker's own strings on an ingester) and three
// int32 orders (12 bytes per metric): about 8.4 MB for 100,000 metrics,
// replaced, not grown, at each refresh.
//
// Metrics and Tenants without sketches or labels answer from the snapshot;
// Metric and anything with sketches or labels go to the source. Safe for
// concurrent use.
type Snapshot struct {
	src      cardinality.Source
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time

	refresh sync.Mutex // one refresh at a time
	cur     atomic.Pointer[ranked]
}

var _ cardinality.Source = (*Snapshot)(nil)

// ranked is one snapshot.
type ranked struct {
	at      time.Time
	rows    []rankedRow // by series, highest first, then tenant, name
	orders  map[string][]int32
	tenants []cardinality.TenantCardinality // by series
}

type rankedRow struct {
	name, tenant    string
	series, refused uint64
	samples, bytes  float64
	limit           int64
}

func (r *rankedRow) row() cardinality.MetricCardinality {
	return cardinality.MetricCardinality{Name: r.name, Tenant: r.tenant, Series: r.series, SamplesRate: r.samples,
		BytesRate: r.bytes, RefusedSeries: r.refused, Limit: r.limit}
}

// NewSnapshot builds an empty snapshot of src refreshed every interval.
func NewSnapshot(src cardinality.Source, interval time.Duration, logger *slog.Logger) *Snapshot {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Snapshot{src: src, interval: interval, logger: logger, now: time.Now}
}

// Refresh takes a new snapshot now. On failure the previous one stays.
func (s *Snapshot) Refresh(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	return s.take(ctx)
}

// take reads every metric and tenant from the source; called with refresh.
func (s *Snapshot) take(ctx context.Context) error {
	at := s.now()
	rows, err := s.src.Metrics(ctx, cardinality.Query{Limit: -1, Sort: cardinality.SortSeries})
	if err != nil {
		return err
	}
	tenants, err := s.src.Tenants(ctx, cardinality.Query{Limit: -1, Sort: cardinality.SortSeries})
	if err != nil {
		return err
	}
	cardinality.SortMetrics(rows, cardinality.SortSeries)
	r := &ranked{at: at, rows: make([]rankedRow, len(rows)), tenants: tenants, orders: map[string][]int32{}}
	for i := range rows {
		m := &rows[i]
		r.rows[i] = rankedRow{name: m.Name, tenant: m.Tenant, series: m.Series, refused: m.RefusedSeries,
			samples: m.SamplesRate, bytes: m.BytesRate, limit: m.Limit}
	}
	for by, key := range map[string]func(*rankedRow) float64{
		cardinality.SortSamplesRate: func(r *rankedRow) float64 { return r.samples },
		SortBytesRate:               func(r *rankedRow) float64 { return r.bytes },
		cardinality.SortRefused:     func(r *rankedRow) float64 { return float64(r.refused) },
	} {
		idx := make([]int32, len(r.rows))
		for i := range idx {
			idx[i] = int32(i)
		}
		slices.SortFunc(idx, func(a, b int32) int {
			ra, rb := &r.rows[a], &r.rows[b]
			return cmp.Or(cmp.Compare(key(rb), key(ra)), strings.Compare(ra.tenant, rb.tenant), strings.Compare(ra.name, rb.name))
		})
		r.orders[by] = idx
	}
	s.cur.Store(r)
	return nil
}

// get returns a snapshot no older than twice the interval, taking one when
// there is none or it is older. A failed refresh falls back to the old one.
func (s *Snapshot) get(ctx context.Context) (*ranked, error) {
	if r := s.cur.Load(); r != nil && s.now().Sub(r.at) < 2*s.interval {
		return r, nil
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	if r := s.cur.Load(); r != nil && s.now().Sub(r.at) < 2*s.interval {
		return r, nil // another caller refreshed it meanwhile
	}
	err := s.take(ctx)
	if r := s.cur.Load(); r != nil {
		if err != nil {
			s.logger.Warn("UI snapshot refresh failed; serving the previous one", "taken", r.at, "err", err)
		}
		return r, nil
	}
	return nil, err
}

// Ranked answers a page's metric list: the first limit metrics (all when
// limit < 0) of tenant ("" is every tenant) whose name contains filter
// (case-insensitive; "" is all), in the order by (SortSeries when not
// known), and how many metrics match. It copies only the rows it answers.
func (s *Snapshot) Ranked(ctx context.Context, tenant, by, filter string, limit int) ([]cardinality.MetricCardinality, int, error) {
	r, err := s.get(ctx)
	if err != nil {
		return nil, 0, err
	}
	filter = strings.ToLower(filter)
	idx := r.orders[by]
	n := len(r.rows)
	total := 0
	var out []cardinality.MetricCardinality
	for j := range n {
		i := j
		if idx != nil {
			i = int(idx[j])
		}
		row := &r.rows[i]
		if tenant != "" && row.tenant != tenant {
			continue
		}
		if filter != "" && !strings.Contains(strings.ToLower(row.name), filter) {
			continue
		}
		total++
		if limit < 0 || len(out) < limit {
			out = append(out, row.row())
		} else if filter == "" && tenant == "" {
			total = n // every remaining row matches
			break
		}
	}
	return out, total, nil
}

// Metrics answers from the snapshot unless q asks for sketches or labels.
func (s *Snapshot) Metrics(ctx context.Context, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	if q.Sketches || q.Labels {
		return s.src.Metrics(ctx, q)
	}
	limit := q.Limit
	if limit == 0 {
		limit = cardinality.DefaultQueryLimit
	}
	out, _, err := s.Ranked(ctx, q.Tenant, q.Sort, "", limit)
	return out, err
}

// Metric is the source's (one metric with its labels is cheap).
func (s *Snapshot) Metric(ctx context.Context, name string, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	return s.src.Metric(ctx, name, q)
}

// Tenants answers from the snapshot unless q asks for sketches.
func (s *Snapshot) Tenants(ctx context.Context, q cardinality.Query) ([]cardinality.TenantCardinality, error) {
	if q.Sketches {
		return s.src.Tenants(ctx, q)
	}
	r, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	var out []cardinality.TenantCardinality
	for _, t := range r.tenants {
		if q.Tenant == "" || t.Tenant == q.Tenant {
			out = append(out, t)
		}
	}
	if q.Sort != "" && q.Sort != cardinality.SortSeries {
		cardinality.SortTenants(out, q.Sort)
	}
	switch {
	case q.Limit == 0:
		out = out[:min(len(out), cardinality.DefaultQueryLimit)]
	case q.Limit > 0:
		out = out[:min(len(out), q.Limit)]
	}
	return out, nil
}
