package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
)

// BenchmarkFanOutMetrics is the distributor's top-100 answer over three
// ingesters that track 100k metrics between them (3 series each), through
// real gRPC on loopback: the API's latency at that scale.
func BenchmarkFanOutMetrics(b *testing.B) {
	const metrics = 100_000
	var members []ring.Member
	for i := range 3 {
		tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
		require.NoError(b, err)
		now := time.Now()
		for m := i; m < metrics; m += 3 {
			name := "metric_" + strconv.Itoa(m)
			for s := range 3 {
				ls := labels.FromStrings(model.MetricNameLabel, name, "id", strconv.Itoa(s))
				tr.Observe(&cardinality.Series{Tenant: "t", Metric: name, Labels: ls, Samples: 1, Bytes: 100}, now)
			}
		}
		n := serveNodeB(b, "i"+strconv.Itoa(i), tr)
		members = append(members, n.member(ring.StateActive))
	}
	dist := ring.Member{Name: "dist", Role: ring.RoleDistributor, State: ring.StateActive}
	f := newFakeRing(b, dist, append(members, dist)...)
	pool := NewPool()
	defer pool.Close()
	fo := NewFanOut(DefaultConfig(), FanOutDeps{Members: f, Clients: pool})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rows, err := fo.Metrics(ctx, cardinality.Query{Limit: 100})
		if err != nil || len(rows) != 100 {
			b.Fatalf("rows %d, err %v", len(rows), err)
		}
	}
}
