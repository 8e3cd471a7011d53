package cardinality

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// MetricCardinality is one (tenant, metric) in the analytics API.
type MetricCardinality struct {
	// Name is the metric name.
	Name string `json:"name"`
	// Tenant is the tenant.
	Tenant string `json:"tenant"`
	// Series is the estimated distinct series over the window, refused
	// attempts included (the demand).
	Series uint64 `json:"series"`
	// SamplesRate is samples/s over the window.
	SamplesRate float64 `json:"samples_rate"`
	// BytesRate is bytes/s over the window.
	BytesRate float64 `json:"bytes_rate"`
	// RefusedSeries is the estimated distinct series refused (or, in shadow
	// mode, that would have been) over the window.
	RefusedSeries uint64 `json:"refused_series"`
	// Limit is the max_series_per_metric in force; 0 is unlimited.
	Limit int64 `json:"limit"`
	// Labels, in the single-metric answer only: per label name its
	// estimated distinct values, highest first.
	Labels []LabelCardinality `json:"labels,omitempty"`
	// SeriesSketch and RefusedSketch are the encoded sketches behind Series
	// and RefusedSeries, present when asked for with sketches=true, so a
	// distributor can merge answers from several ingesters.
	SeriesSketch  []byte `json:"series_sketch,omitempty"`
	RefusedSketch []byte `json:"refused_sketch,omitempty"`
}

// LabelCardinality is one label name of a metric.
type LabelCardinality struct {
	// Name is the label name.
	Name string `json:"name"`
	// Values is the estimated distinct values over the window.
	Values uint64 `json:"values"`
	// Sketch is the encoded sketch behind Values (sketches=true only).
	Sketch []byte `json:"sketch,omitempty"`
}

// TenantCardinality is one tenant in the analytics API.
type TenantCardinality struct {
	// Tenant is the tenant.
	Tenant string `json:"tenant"`
	// Series is the estimated distinct series over the window, refused
	// attempts included.
	Series uint64 `json:"series"`
	// SamplesRate is samples/s over the window.
	SamplesRate float64 `json:"samples_rate"`
	// BytesRate is bytes/s over the window.
	BytesRate float64 `json:"bytes_rate"`
	// RefusedSeries is the estimated distinct series refused.
	RefusedSeries uint64 `json:"refused_series"`
	// Limit is the max_series_per_tenant in force; 0 is unlimited.
	Limit int64 `json:"limit"`
	// SeriesSketch and RefusedSketch: see MetricCardinality.
	SeriesSketch  []byte `json:"series_sketch,omitempty"`
	RefusedSketch []byte `json:"refused_sketch,omitempty"`
}

// The sort orders of the metrics listing.
const (
	SortSeries      = "series"
	SortSamplesRate = "samples_rate"
	SortRefused     = "refused"
)

// DefaultQueryLimit is the number of rows answered when Query.Limit is 0.
const DefaultQueryLimit = 100

// Query selects and orders rows of the analytics API.
type Query struct {
	// Tenant restricts rows to one tenant; empty is every tenant.
	Tenant string
	// Limit is the number of rows; 0 is DefaultQueryLimit, negative is all.
	Limit int
	// Sort is SortSeries (default), SortSamplesRate or SortRefused; rows
	// are ordered highest first.
	Sort string
	// Sketches asks for encoded sketches in the rows.
	Sketches bool
}

func (q Query) limit(n int) int {
	switch {
	case q.Limit < 0:
		return n
	case q.Limit == 0:
		return min(n, DefaultQueryLimit)
	default:
		return min(n, q.Limit)
	}
}

// Metrics answers /api/v1/cardinality/metrics for this ingester. Sketches,
// when asked for, are encoded only for the rows answered.
func (t *Tracker) Metrics(ctx context.Context, q Query) ([]MetricCardinality, error) {
	now := t.now()
	cur := epochOf(now, t.sub)
	out := make([]MetricCardinality, 0, t.nMetrics.Load())
	for _, tn := range t.tenantList() {
		if q.Tenant != "" && tn.name != q.Tenant {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, m := range tn.metricList() {
			row, err := t.metricRow(tn, m, cur, now, false, false)
			if err != nil {
				return nil, err
			}
			out = append(out, row)
		}
	}
	SortMetrics(out, q.Sort)
	out = out[:q.limit(len(out))]
	if q.Sketches {
		for i := range out {
			if err := t.addSketches(&out[i], cur); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// addSketches fills row's sketches from the metric's current state.
func (t *Tracker) addSketches(row *MetricCardinality, cur int64) error {
	t.mu.RLock()
	tn := t.tenants[row.Tenant]
	t.mu.RUnlock()
	if tn == nil {
		return nil
	}
	tn.mu.RLock()
	m := tn.metrics[row.Name]
	tn.mu.RUnlock()
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	if _, row.SeriesSketch, err = m.series.window(cur, t.n, t.cfg.Precision, true); err != nil {
		return fmt.Errorf("metric %q of tenant %q: %w", m.name, tn.name, err)
	}
	if _, row.RefusedSketch, err = m.refused.window(cur, t.n, t.cfg.Precision, true); err != nil {
		return fmt.Errorf("metric %q of tenant %q: %w", m.name, tn.name, err)
	}
	return nil
}

// Metric answers /api/v1/cardinality/metrics/{name}: the metric in every
// tenant (or only q.Tenant) with its labels. No rows means not tracked.
func (t *Tracker) Metric(ctx context.Context, name string, q Query) ([]MetricCardinality, error) {
	now := t.now()
	cur := epochOf(now, t.sub)
	var out []MetricCardinality
	for _, tn := range t.tenantList() {
		if q.Tenant != "" && tn.name != q.Tenant {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tn.mu.RLock()
		m := tn.metrics[name]
		tn.mu.RUnlock()
		if m == nil {
			continue
		}
		row, err := t.metricRow(tn, m, cur, now, q.Sketches, true)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	SortMetrics(out, q.Sort)
	return out[:q.limit(len(out))], nil
}

func (t *Tracker) metricRow(tn *tenantState, m *metricState, cur int64, now time.Time, sketches, withLabels bool) (MetricCardinality, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t.refreshLimits(tn, m)
	row := MetricCardinality{Name: m.name, Tenant: tn.name}
	if !m.lim.exempt {
		row.Limit = m.lim.seriesPerMetric.max
	}
	var err error
	if row.Series, row.SeriesSketch, err = m.series.window(cur, t.n, t.cfg.Precision, sketches); err != nil {
		return row, fmt.Errorf("metric %q of tenant %q: %w", m.name, tn.name, err)
	}
	if row.RefusedSeries, row.RefusedSketch, err = m.refused.window(cur, t.n, t.cfg.Precision, sketches); err != nil {
		return row, fmt.Errorf("metric %q of tenant %q: %w", m.name, tn.name, err)
	}
	row.SamplesRate, row.BytesRate = m.rates.perSecond(now, t.sub, t.n, m.first)
	if withLabels {
		row.Labels = make([]LabelCardinality, 0, len(m.labels))
		for name, ls := range m.labels {
			l := LabelCardinality{Name: name}
			if l.Values, l.Sketch, err = ls.values.window(cur, t.n, t.cfg.LabelPrecision, sketches); err != nil {
				return row, fmt.Errorf("label %q of metric %q: %w", name, m.name, err)
			}
			row.Labels = append(row.Labels, l)
		}
		SortLabels(row.Labels)
	}
	return row, nil
}

// Tenants answers /api/v1/cardinality/tenants for this ingester.
func (t *Tracker) Tenants(ctx context.Context, q Query) ([]TenantCardinality, error) {
	now := t.now()
	cur := epochOf(now, t.sub)
	lim := t.limits.Load()
	var out []TenantCardinality
	for _, tn := range t.tenantList() {
		if q.Tenant != "" && tn.name != q.Tenant {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		row := TenantCardinality{Tenant: tn.name, Limit: lim.tenantLimit(tn.name).max}
		var err error
		tn.skMu.Lock()
		row.Series, row.SeriesSketch, err = tn.demand.window(cur, t.n, t.cfg.Precision, q.Sketches)
		if err == nil {
			row.RefusedSeries, row.RefusedSketch, err = tn.refused.window(cur, t.n, t.cfg.Precision, q.Sketches)
		}
		tn.skMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tn.name, err)
		}
		for _, m := range tn.metricList() {
			m.mu.Lock()
			s, b := m.rates.perSecond(now, t.sub, t.n, m.first)
			m.mu.Unlock()
			row.SamplesRate += s
			row.BytesRate += b
		}
		out = append(out, row)
	}
	SortTenants(out, q.Sort)
	return out[:q.limit(len(out))], nil
}

// SortMetrics orders rows highest first by by (SortSeries when empty), then
// by tenant and name.
func SortMetrics(rows []MetricCardinality, by string) {
	key := func(r *MetricCardinality) float64 {
		switch by {
		case SortSamplesRate:
			return r.SamplesRate
		case SortRefused:
			return float64(r.RefusedSeries)
		default:
			return float64(r.Series)
		}
	}
	slices.SortFunc(rows, func(a, b MetricCardinality) int {
		if c := cmp.Compare(key(&b), key(&a)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}

// SortTenants orders rows like SortMetrics, then by tenant.
func SortTenants(rows []TenantCardinality, by string) {
	key := func(r *TenantCardinality) float64 {
		switch by {
		case SortSamplesRate:
			return r.SamplesRate
		case SortRefused:
			return float64(r.RefusedSeries)
		default:
			return float64(r.Series)
		}
	}
	slices.SortFunc(rows, func(a, b TenantCardinality) int {
		if c := cmp.Compare(key(&b), key(&a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Tenant, b.Tenant)
	})
}

// SortLabels orders labels by distinct values, highest first, then by name.
func SortLabels(ls []LabelCardinality) {
	slices.SortFunc(ls, func(a, b LabelCardinality) int {
		if c := cmp.Compare(b.Values, a.Values); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}
