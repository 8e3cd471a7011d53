package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// threeIngesters: m1 on a, m2 on b, and m3 seen by both b and c (a ring
// change moved it), with 50 series in common.
func threeIngesters(t *testing.T) (nodes []*testNode, f *fakeRing) {
	t.Helper()
	cfg := cardinality.DefaultConfig()
	a, b, c := startNode(t, "a", cfg), startNode(t, "b", cfg), startNode(t, "c", cfg)
	observe(a.tracker, "team-a", "m1", 0, 100)
	observe(b.tracker, "team-a", "m2", 0, 50)
	observe(b.tracker, "team-a", "m3", 0, 150)
	observe(c.tracker, "team-a", "m3", 100, 300)
	observe(c.tracker, "team-b", "m1", 0, 10)
	dist := ring.Member{Name: "dist", Role: ring.RoleDistributor, State: ring.StateActive}
	f = newFakeRing(t, dist, dist, a.member(ring.StateActive), b.member(ring.StateActive), c.member(ring.StateActive))
	return []*testNode{a, b, c}, f
}

func TestFanOutMerges(t *testing.T) {
	nodes, f := threeIngesters(t)
	pool := NewPool()
	defer pool.Close()
	fo := NewFanOut(testConfig(), FanOutDeps{Members: f, Clients: pool})
	ctx := context.Background()

	rows, err := fo.Metrics(ctx, cardinality.Query{Tenant: "team-a"})
	require.NoError(t, err)
	got := map[string]uint64{}
	for _, r := range rows {
		require.Empty(t, r.SeriesSketch, "sketches are only kept when asked for")
		got[r.Name] = r.Series
	}
	require.Equal(t, map[string]uint64{"m1": 100, "m2": 50, "m3": 300}, got,
		"m3 is the union of both owners' sketches (300 distinct), not the sum (350)")
	require.Equal(t, "m3", rows[0].Name, "sorted by series, highest first")

	one, err := fo.Metric(ctx, "m3", cardinality.Query{})
	require.NoError(t, err)
	require.Len(t, one, 1)
	require.Equal(t, uint64(300), one[0].Series)
	require.NotEmpty(t, one[0].Labels)
	require.Equal(t, "id", one[0].Labels[0].Name, "the exploding label comes first")
	require.Equal(t, uint64(300), one[0].Labels[0].Values)

	none, err := fo.Metric(ctx, "absent", cardinality.Query{})
	require.NoError(t, err)
	require.Empty(t, none)

	tenants, err := fo.Tenants(ctx, cardinality.Query{})
	require.NoError(t, err)
	byTenant := map[string]uint64{}
	for _, r := range tenants {
		byTenant[r.Tenant] = r.Series
	}
	// The union of every ingester's sketch equals what one tracker that saw
	// everything estimates.
	single, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	observe(single, "team-a", "m1", 0, 100)
	observe(single, "team-a", "m2", 0, 50)
	observe(single, "team-a", "m3", 0, 300)
	want, err := single.Tenants(ctx, cardinality.Query{Tenant: "team-a"})
	require.NoError(t, err)
	require.Equal(t, want[0].Series, byTenant["team-a"])
	require.Equal(t, uint64(10), byTenant["team-b"])

	// One ingester down: the others still answer.
	nodes[0].stop()
	rows, err = fo.Metrics(ctx, cardinality.Query{Tenant: "team-a", Limit: -1})
	require.NoError(t, err)
	require.Len(t, rows, 2)

	// All down: an error.
	nodes[1].stop()
	nodes[2].stop()
	_, err = fo.Metrics(ctx, cardinality.Query{})
	require.ErrorIs(t, err, ErrNoIngester)
}

// TestFanOutHandler serves the fan-out with the library's handler, as the
// distributor does, and checks the envelope.
func TestFanOutHandler(t *testing.T) {
	_, f := threeIngesters(t)
	pool := NewPool()
	defer pool.Close()
	srv := httptest.NewServer(cardinality.NewHandler(NewFanOut(testConfig(), FanOutDeps{Members: f, Clients: pool}), "", nil))
	defer srv.Close()

	tests := []struct {
		name   string
		path   string
		status int
		check  func(t *testing.T, body cardinality.Envelope[[]map[string]any])
	}{
		{"metrics sorted", "/promgov/api/v1/cardinality/metrics?tenant=team-a&limit=1", http.StatusOK,
			func(t *testing.T, b cardinality.Envelope[[]map[string]any]) {
				require.Len(t, b.Data, 1)
				require.Equal(t, "m3", b.Data[0]["name"])
				require.NotContains(t, b.Data[0], "series_sketch")
			}},
		{"one metric", "/promgov/api/v1/cardinality/metrics/m1", http.StatusOK,
			func(t *testing.T, b cardinality.Envelope[[]map[string]any]) {
				require.Len(t, b.Data, 2, "m1 exists in two tenants")
			}},
		{"unknown metric", "/promgov/api/v1/cardinality/metrics/nope", http.StatusNotFound, nil},
		{"tenants", "/promgov/api/v1/cardinality/tenants", http.StatusOK,
			func(t *testing.T, b cardinality.Envelope[[]map[string]any]) {
				require.Len(t, b.Data, 2)
				require.Equal(t, "team-a", b.Data[0]["tenant"])
			}},
		{"bad sort", "/promgov/api/v1/cardinality/metrics?sort=nope", http.StatusBadRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+tc.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			var env cardinality.Envelope[[]map[string]any]
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			if tc.check != nil {
				require.Equal(t, "success", env.Status)
				tc.check(t, env)
			}
		})
	}
}

func TestFanOutParams(t *testing.T) {
	for name, tc := range map[string]struct {
		q    cardinality.Query
		want *ingesterv1.CardinalityQuery
	}{
		"defaults": {cardinality.Query{}, &ingesterv1.CardinalityQuery{Sketches: true}},
		"all": {cardinality.Query{Tenant: "a", Limit: 5, Sort: cardinality.SortRefused, Labels: true},
			&ingesterv1.CardinalityQuery{Tenant: "a", Limit: 5, Sort: "refused", Sketches: true, Labels: true}},
		"sketches": {cardinality.Query{Sketches: true}, &ingesterv1.CardinalityQuery{Sketches: true}},
		"labels":   {cardinality.Query{Labels: true}, &ingesterv1.CardinalityQuery{Sketches: true, Labels: true}},
	} {
		t.Run(name, func(t *testing.T) {
			require.True(t, proto.Equal(tc.want, askFor(tc.q)), "%v", askFor(tc.q))
		})
	}
}

// TestFanOutLabels: the listing asked with labels carries every metric's
// labels and label-drop estimates through the fan-out, without label
// sketches; a metric two ingesters answer for takes the larger estimate.
func TestFanOutLabels(t *testing.T) {
	_, f := threeIngesters(t)
	pool := NewPool()
	defer pool.Close()
	fo := NewFanOut(testConfig(), FanOutDeps{Members: f, Clients: pool})
	ctx := context.Background()

	rows, err := fo.Metrics(ctx, cardinality.Query{Tenant: "team-a", Labels: true})
	require.NoError(t, err)
	got := map[string]map[string]uint64{}
	for _, r := range rows {
		got[r.Name] = map[string]uint64{}
		for _, l := range r.Labels {
			require.Nil(t, l.Sketch)
			require.Nil(t, l.WithoutSketch)
			got[r.Name][l.Name] = l.SeriesWithout
		}
	}
	// Series carry id and pod (id % 3): dropping id leaves the 3 pods,
	// dropping pod merges nothing. m3's parts hold 150 and 200 series.
	require.Equal(t, map[string]map[string]uint64{
		"m1": {"id": 3, "pod": 100},
		"m2": {"id": 3, "pod": 50},
		"m3": {"id": 3, "pod": 200},
	}, got)

	rows, err = fo.Metrics(ctx, cardinality.Query{Tenant: "team-a"})
	require.NoError(t, err)
	for _, r := range rows {
		require.Nil(t, r.Labels, "no labels unless asked for")
	}

	// The single-metric answer carries label sketches: their union.
	one, err := fo.Metric(ctx, "m3", cardinality.Query{})
	require.NoError(t, err)
	require.Equal(t, []cardinality.LabelCardinality{
		{Name: "id", Values: 300, SeriesWithout: 3},
		{Name: "pod", Values: 3, SeriesWithout: 300},
	}, one[0].Labels)
}
