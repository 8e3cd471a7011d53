// Package cardinalitypb converts the analytics API's rows and queries
// (cardinality.MetricCardinality, TenantCardinality, Query) to and from the
// cluster service's messages (QueryMetrics, QueryTenants), so that
// ingesters answer distributors with typed rows and sketches as bytes,
// never with JSON.
package cardinalitypb

import (
	"fmt"

	"github.com/promgov/promgov/pkg/cardinality"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Query returns q as a message.
func Query(q cardinality.Query) *ingesterv1.CardinalityQuery {
	return &ingesterv1.CardinalityQuery{
		Tenant: q.Tenant, Limit: int64(q.Limit), Sort: q.Sort, Sketches: q.Sketches, Labels: q.Labels,
	}
}

// FromQuery validates m and returns it as a query; its errors name the
// field.
func FromQuery(m *ingesterv1.CardinalityQuery) (cardinality.Query, error) {
	q := cardinality.Query{
		Tenant: m.GetTenant(), Limit: int(m.GetLimit()), Sort: m.GetSort(), Sketches: m.GetSketches(), Labels: m.GetLabels(),
	}
	switch q.Sort {
	case "", cardinality.SortSeries, cardinality.SortSamplesRate, cardinality.SortRefused:
	default:
		return q, fmt.Errorf("sort: %q is not one of series, samples_rate, refused", q.Sort)
	}
	return q, nil
}

// Metrics returns rows as messages.
func Metrics(rows []cardinality.MetricCardinality) []*ingesterv1.MetricCardinality {
	out := make([]*ingesterv1.MetricCardinality, len(rows))
	for i, r := range rows {
		m := &ingesterv1.MetricCardinality{
			Name: r.Name, Tenant: r.Tenant, Series: r.Series, SamplesRate: r.SamplesRate, BytesRate: r.BytesRate,
			RefusedSeries: r.RefusedSeries, Limit: r.Limit, SeriesSketch: r.SeriesSketch, RefusedSketch: r.RefusedSketch,
		}
		if r.Labels != nil {
			m.Labels = make([]*ingesterv1.LabelCardinality, len(r.Labels))
			for j, l := range r.Labels {
				m.Labels[j] = &ingesterv1.LabelCardinality{
					Name: l.Name, Values: l.Values, SeriesWithout: l.SeriesWithout, Sketch: l.Sketch, WithoutSketch: l.WithoutSketch,
				}
			}
		}
		out[i] = m
	}
	return out
}

// FromMetrics returns the rows of messages.
func FromMetrics(ms []*ingesterv1.MetricCardinality) []cardinality.MetricCardinality {
	if len(ms) == 0 {
		return nil
	}
	out := make([]cardinality.MetricCardinality, len(ms))
	for i, m := range ms {
		r := cardinality.MetricCardinality{
			Name: m.GetName(), Tenant: m.GetTenant(), Series: m.GetSeries(), SamplesRate: m.GetSamplesRate(),
			BytesRate: m.GetBytesRate(), RefusedSeries: m.GetRefusedSeries(), Limit: m.GetLimit(),
			SeriesSketch: m.GetSeriesSketch(), RefusedSketch: m.GetRefusedSketch(),
		}
		if ls := m.GetLabels(); len(ls) > 0 {
			r.Labels = make([]cardinality.LabelCardinality, len(ls))
			for j, l := range ls {
				r.Labels[j] = cardinality.LabelCardinality{
					Name: l.GetName(), Values: l.GetValues(), SeriesWithout: l.GetSeriesWithout(),
					Sketch: l.GetSketch(), WithoutSketch: l.GetWithoutSketch(),
				}
			}
		}
		out[i] = r
	}
	return out
}

// Tenants returns rows as messages.
func Tenants(rows []cardinality.TenantCardinality) []*ingesterv1.TenantCardinality {
	out := make([]*ingesterv1.TenantCardinality, len(rows))
	for i, r := range rows {
		out[i] = &ingesterv1.TenantCardinality{
			Tenant: r.Tenant, Series: r.Series, SamplesRate: r.SamplesRate, BytesRate: r.BytesRate,
			RefusedSeries: r.RefusedSeries, Limit: r.Limit, SeriesSketch: r.SeriesSketch, RefusedSketch: r.RefusedSketch,
		}
	}
	return out
}

// FromTenants returns the rows of messages.
func FromTenants(ms []*ingesterv1.TenantCardinality) []cardinality.TenantCardinality {
	if len(ms) == 0 {
		return nil
	}
	out := make([]cardinality.TenantCardinality, len(ms))
	for i, m := range ms {
		out[i] = cardinality.TenantCardinality{
			Tenant: m.GetTenant(), Series: m.GetSeries(), SamplesRate: m.GetSamplesRate(), BytesRate: m.GetBytesRate(),
			RefusedSeries: m.GetRefusedSeries(), Limit: m.GetLimit(),
			SeriesSketch: m.GetSeriesSketch(), RefusedSketch: m.GetRefusedSketch(),
		}
	}
	return out
}
