package cardinality

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/axiomhq/hyperloglog"
)

// ErrAPI is matched by DecodeMetrics and DecodeTenants errors for an answer
// whose status is "error".
var ErrAPI = errors.New("cardinality API error")

// DecodeMetrics decodes an ingester's answer to the metrics endpoints (list
// or single metric) as the distributor receives it.
func DecodeMetrics(body []byte) ([]MetricCardinality, error) {
	return decodeEnvelope[MetricCardinality](body)
}

// DecodeTenants decodes an ingester's answer to the tenants endpoint.
func DecodeTenants(body []byte) ([]TenantCardinality, error) {
	return decodeEnvelope[TenantCardinality](body)
}

func decodeEnvelope[T any](body []byte) ([]T, error) {
	var env Envelope[[]T]
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decode cardinality answer: %w", err)
	}
	switch env.Status {
	case "success":
		return env.Data, nil
	case "error":
		return nil, fmt.Errorf("%w: %s: %s", ErrAPI, env.ErrorType, env.Error)
	default:
		return nil, fmt.Errorf("decode cardinality answer: status %q is neither success nor error", env.Status)
	}
}

// sketchMerger unites encoded sketches and falls back to the largest plain
// number for parts that carry none (an ingester asked without sketches). It
// never adds estimates: the same series seen by two ingesters (after a ring
// change) would count twice.
type sketchMerger struct {
	sk    *hyperloglog.Sketch
	plain uint64 // largest estimate of the parts without a sketch
}

func (m *sketchMerger) add(est uint64, b []byte) error {
	if len(b) == 0 {
		m.plain = max(m.plain, est)
		return nil
	}
	var sk hyperloglog.Sketch
	if err := sk.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("decode sketch: %w: %w", ErrCorrupt, err)
	}
	if m.sk == nil {
		m.sk = &sk
	} else if err := m.sk.Merge(&sk); err != nil {
		return fmt.Errorf("merge sketch: %w: %w", ErrIncompatible, err)
	}
	return nil
}

// result returns the merged estimate and, when keep is set, the merged
// sketch (for a further level of merging).
func (m *sketchMerger) result(keep bool) (uint64, []byte, error) {
	if m.sk == nil {
		return m.plain, nil, nil
	}
	// A part without a sketch is a lower bound the union cannot go below.
	est := max(m.sk.Estimate(), m.plain)
	if !keep {
		return est, nil, nil
	}
	b, err := m.sk.MarshalBinary()
	return est, b, err
}

type metricKey struct{ tenant, name string }

// MergeMetrics combines several ingesters' answers to the metrics endpoints
// into the cluster's answer, ordered and cut as q says. Rows of the same
// (tenant, metric) from several ingesters (during a ring change both owners
// answer) are merged: series, refused series and label values by uniting
// their sketches, rates by adding them, the limit by taking the largest.
// Labels are merged by name: values and SeriesWithout by uniting sketches
// where every part carries one, otherwise by taking the largest estimate
// (the listing carries no label sketches; a metric has two owners only
// briefly). SeriesWithout is unknown (0) when any part that has series of
// the label does not know it, and never above the merged Series.
// Parts should be fetched with sketches=true and each cut to at least
// q.Limit rows: since a metric has one owner, the union of every ingester's
// top q.Limit holds the cluster's top q.Limit. The returned rows keep their
// merged sketches only when q.Sketches is set.
func MergeMetrics(parts [][]MetricCardinality, q Query) ([]MetricCardinality, error) {
	type labelAcc struct {
		values, without sketchMerger
		unknown         bool // a part with values did not know SeriesWithout
	}
	type acc struct {
		row             MetricCardinality
		series, refused sketchMerger
		labels          map[string]*labelAcc
		order           []string
	}
	byKey := map[metricKey]*acc{}
	var keys []metricKey
	for _, part := range parts {
		for i := range part {
			r := &part[i]
			k := metricKey{r.Tenant, r.Name}
			a := byKey[k]
			if a == nil {
				a = &acc{row: MetricCardinality{Name: r.Name, Tenant: r.Tenant}}
				byKey[k] = a
				keys = append(keys, k)
			}
			if err := a.series.add(r.Series, r.SeriesSketch); err != nil {
				return nil, fmt.Errorf("metric %q of tenant %q: series: %w", r.Name, r.Tenant, err)
			}
			if err := a.refused.add(r.RefusedSeries, r.RefusedSketch); err != nil {
				return nil, fmt.Errorf("metric %q of tenant %q: refused: %w", r.Name, r.Tenant, err)
			}
			a.row.SamplesRate += r.SamplesRate
			a.row.BytesRate += r.BytesRate
			a.row.Limit = max(a.row.Limit, r.Limit)
			for _, l := range r.Labels {
				if a.labels == nil {
					a.labels = map[string]*labelAcc{}
				}
				la := a.labels[l.Name]
				if la == nil {
					la = &labelAcc{}
					a.labels[l.Name] = la
					a.order = append(a.order, l.Name)
				}
				if err := la.values.add(l.Values, l.Sketch); err != nil {
					return nil, fmt.Errorf("metric %q of tenant %q: label %q: %w", r.Name, r.Tenant, l.Name, err)
				}
				switch {
				case l.SeriesWithout == 0 && len(l.WithoutSketch) == 0:
					la.unknown = la.unknown || l.Values > 0
				default:
					if err := la.without.add(l.SeriesWithout, l.WithoutSketch); err != nil {
						return nil, fmt.Errorf("metric %q of tenant %q: label %q: without: %w", r.Name, r.Tenant, l.Name, err)
					}
				}
			}
		}
	}
	out := make([]MetricCardinality, 0, len(keys))
	for _, k := range keys {
		a := byKey[k]
		var err error
		if a.row.Series, a.row.SeriesSketch, err = a.series.result(q.Sketches); err != nil {
			return nil, err
		}
		if a.row.RefusedSeries, a.row.RefusedSketch, err = a.refused.result(q.Sketches); err != nil {
			return nil, err
		}
		for _, name := range a.order {
			la := a.labels[name]
			l := LabelCardinality{Name: name}
			if l.Values, l.Sketch, err = la.values.result(q.Sketches); err != nil {
				return nil, err
			}
			if !la.unknown {
				if l.SeriesWithout, l.WithoutSketch, err = la.without.result(q.Sketches); err != nil {
					return nil, err
				}
				l.SeriesWithout = min(l.SeriesWithout, a.row.Series)
			}
			a.row.Labels = append(a.row.Labels, l)
		}
		SortLabels(a.row.Labels)
		out = append(out, a.row)
	}
	return TopMetrics(out, q.Sort, q.limit(len(out))), nil
}

// MergeTenants combines several ingesters' answers to the tenants endpoint.
// A tenant's series and refused series are the estimate of the union of
// every ingester's sketch — never a sum, which would count a series twice
// when a ring change moved its metric. Parts must be fetched with
// sketches=true for that; a part without sketches contributes only as a
// lower bound (the largest single answer). Rates add up; the limit is the
// largest answered.
func MergeTenants(parts [][]TenantCardinality, q Query) ([]TenantCardinality, error) {
	type acc struct {
		row             TenantCardinality
		series, refused sketchMerger
	}
	byTenant := map[string]*acc{}
	var order []string
	for _, part := range parts {
		for i := range part {
			r := &part[i]
			a := byTenant[r.Tenant]
			if a == nil {
				a = &acc{row: TenantCardinality{Tenant: r.Tenant}}
				byTenant[r.Tenant] = a
				order = append(order, r.Tenant)
			}
			if err := a.series.add(r.Series, r.SeriesSketch); err != nil {
				return nil, fmt.Errorf("tenant %q: series: %w", r.Tenant, err)
			}
			if err := a.refused.add(r.RefusedSeries, r.RefusedSketch); err != nil {
				return nil, fmt.Errorf("tenant %q: refused: %w", r.Tenant, err)
			}
			a.row.SamplesRate += r.SamplesRate
			a.row.BytesRate += r.BytesRate
			a.row.Limit = max(a.row.Limit, r.Limit)
		}
	}
	out := make([]TenantCardinality, 0, len(order))
	for _, name := range order {
		a := byTenant[name]
		var err error
		if a.row.Series, a.row.SeriesSketch, err = a.series.result(q.Sketches); err != nil {
			return nil, err
		}
		if a.row.RefusedSeries, a.row.RefusedSketch, err = a.refused.result(q.Sketches); err != nil {
			return nil, err
		}
		out = append(out, a.row)
	}
	SortTenants(out, q.Sort)
	return out[:q.limit(len(out))], nil
}

// MergeSketches returns the estimate of the union of encoded sketches, e.g.
// several ingesters' TenantSketch answers.
func MergeSketches(sketches ...[]byte) (uint64, error) {
	var m sketchMerger
	for i, b := range sketches {
		if len(b) == 0 {
			continue
		}
		if err := m.add(0, b); err != nil {
			return 0, fmt.Errorf("sketch %d: %w", i, err)
		}
	}
	est, _, err := m.result(false)
	return est, err
}
