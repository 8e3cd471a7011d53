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
	// Labels, in the single-metric answer and in the listing when asked
	// for (Query.Labels): per label name its estimated distinct values and
	// SeriesWithout, highest values first.
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
	// SeriesWithout is the estimated distinct series the metric would have
	// over the window if this label were dropped (a labeldrop rule): less
	// than the metric's Series when dropping it merges series. 0 is
	// unknown: label-drop estimates are off, or the label's estimate does
	// not cover the whole window yet (it appeared after the metric's first
	// series, or the state was restored from an older snapshot). Never
	// above the metric's Series.
	SeriesWithout uint64 `json:"series_without,omitempty"`
	// Sketch is the encoded sketch behind Values (sketches=true only, in the
	// single-metric answer).
	Sketch []byte `json:"sketch,omitempty"`
	// WithoutSketch is the encoded sketch behind SeriesWithout
	// (sketches=true only, in the single-metric answer).
	WithoutSketch []byte `json:"without_sketch,omitempty"`
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
	// Labels asks the metrics listing for each row's Labels (names, values
	// and SeriesWithout), never with label sketches, even with Sketches:
	// answers stay small. The single-metric answer always has labels.
	Labels bool
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

// Metrics answers /promgov/api/v1/cardinality/metrics for this ingester. Sketches
// and labels, when asked for, are computed only for the rows answered; the
// rows' labels carry no sketches.
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
	out = TopMetrics(out, q.Sort, q.limit(len(out)))
	if q.Sketches || q.Labels {
		for i := range out {
			if err := t.addDetails(&out[i], cur, q.Sketches, q.Labels); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// addDetails fills row's series and refused sketches (sketches) and its
// labels without sketches (labels) from the metric's current state.
func (t *Tracker) addDetails(row *MetricCardinality, cur int64, sketches, labels bool) error {
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
	if sketches {
		if _, row.SeriesSketch, err = m.series.window(cur, t.n, t.cfg.Precision, true); err != nil {
			return fmt.Errorf("metric %q of tenant %q: %w", m.name, tn.name, err)
		}
		if _, row.RefusedSketch, err = m.refused.window(cur, t.n, t.cfg.Precision, true); err != nil {
			return fmt.Errorf("metric %q of tenant %q: %w", m.name, tn.name, err)
		}
	}
	if labels {
		if row.Labels, err = t.labelRows(m, cur, row.Series, false); err != nil {
			return err
		}
	}
	return nil
}

// Metric answers /promgov/api/v1/cardinality/metrics/{name}: the metric in every
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
		if row.Labels, err = t.labelRows(m, cur, row.Series, sketches); err != nil {
			return row, err
		}
	}
	return row, nil
}

// labelRows answers m's labels, sorted, with their sketches when asked for;
// series is m's series estimate, which SeriesWithout never exceeds. Called
// with m.mu.
func (t *Tracker) labelRows(m *metricState, cur int64, series uint64, sketches bool) ([]LabelCardinality, error) {
	out := make([]LabelCardinality, 0, len(m.labels))
	// A label's estimate covers the window when its without ring holds every
	// live sub-window of the metric's series.
	oldest, hasLive := m.series.minLive(cur, t.n)
	for name, ls := range m.labels {
		l := LabelCardinality{Name: name}
		var err error
		if l.Values, l.Sketch, err = ls.values.window(cur, t.n, t.cfg.LabelPrecision, sketches); err != nil {
			return nil, fmt.Errorf("label %q of metric %q: %w", name, m.name, err)
		}
		if ls.drop != nil && (!hasLive || oldest >= ls.drop.complete) {
			if l.SeriesWithout, l.WithoutSketch, err = ls.drop.without.window(cur, t.n, t.cfg.withoutPrecision(), sketches); err != nil {
				return nil, fmt.Errorf("label %q of metric %q: without: %w", name, m.name, err)
			}
			l.SeriesWithout = min(l.SeriesWithout, series)
		}
		out = append(out, l)
	}
	SortLabels(out)
	return out, nil
}

// Tenants answers /promgov/api/v1/cardinality/tenants for this ingester.
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
	slices.SortFunc(rows, metricOrder(by))
}

// metricOrder is SortMetrics' order: by the key, highest first, then by
// tenant and name (a total order).
func metricOrder(by string) func(a, b MetricCardinality) int {
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
	return func(a, b MetricCardinality) int {
		if c := cmp.Compare(key(&b), key(&a)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	}
}

// TopMetrics returns the first k rows in SortMetrics' order, in that
// order: the same as SortMetrics then rows[:k], but without sorting every
// row when k is small (a bounded heap, O(n log k)). rows is reordered.
func TopMetrics(rows []MetricCardinality, by string, k int) []MetricCardinality {
	order := metricOrder(by)
	if k >= len(rows) || k*8 > len(rows) {
		slices.SortFunc(rows, order)
		return rows[:min(k, len(rows))]
	}
	if k <= 0 {
		return rows[:0]
	}
	// rows[:k] is a heap whose root is the worst row kept.
	h := rows[:k]
	worse := func(i, j int) bool { return order(h[i], h[j]) > 0 }
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= k {
				return
			}
			if c+1 < k && worse(c+1, c) {
				c++
			}
			if !worse(c, i) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for i := k; i < len(rows); i++ {
		if order(rows[i], h[0]) < 0 {
			h[0], rows[i] = rows[i], h[0]
			down(0)
		}
	}
	slices.SortFunc(h, order)
	return h
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
