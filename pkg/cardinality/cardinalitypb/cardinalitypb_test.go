package cardinalitypb

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/promgov/promgov/pkg/cardinality"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestRoundTrip: rows and queries survive the cluster service's wire
// unchanged, sketches included.
func TestRoundTrip(t *testing.T) {
	metrics := []cardinality.MetricCardinality{
		{Name: "up", Tenant: "a", Series: 10, SamplesRate: 1.5, BytesRate: 20, RefusedSeries: 2, Limit: 100,
			Labels:       []cardinality.LabelCardinality{{Name: "job", Values: 3, SeriesWithout: 4, Sketch: []byte{1}, WithoutSketch: []byte{2}}},
			SeriesSketch: []byte{3, 4}, RefusedSketch: []byte{5}},
		{Name: "down", Tenant: "b"},
	}
	b, err := proto.Marshal(&ingesterv1.QueryMetricsResponse{Metrics: Metrics(metrics)})
	require.NoError(t, err)
	var mr ingesterv1.QueryMetricsResponse
	require.NoError(t, proto.Unmarshal(b, &mr))
	require.Equal(t, metrics, FromMetrics(mr.GetMetrics()))

	tenants := []cardinality.TenantCardinality{{Tenant: "a", Series: 7, SamplesRate: 0.5, BytesRate: 3, RefusedSeries: 1, Limit: 9, SeriesSketch: []byte{1}, RefusedSketch: []byte{2}}}
	b, err = proto.Marshal(&ingesterv1.QueryTenantsResponse{Tenants: Tenants(tenants)})
	require.NoError(t, err)
	var tr ingesterv1.QueryTenantsResponse
	require.NoError(t, proto.Unmarshal(b, &tr))
	require.Equal(t, tenants, FromTenants(tr.GetTenants()))
	require.Nil(t, FromTenants(nil))
	require.Nil(t, FromMetrics(nil))

	q := cardinality.Query{Tenant: "a", Limit: -1, Sort: cardinality.SortRefused, Sketches: true, Labels: true}
	back, err := FromQuery(Query(q))
	require.NoError(t, err)
	require.Equal(t, q, back)
	_, err = FromQuery(&ingesterv1.CardinalityQuery{Sort: "size"})
	require.EqualError(t, err, `sort: "size" is not one of series, samples_rate, refused`)
	back, err = FromQuery(nil)
	require.NoError(t, err)
	require.Equal(t, cardinality.Query{}, back)
}
