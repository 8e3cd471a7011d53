package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// accessBenchCluster is three ingesters with query statistics behind real
// gRPC on loopback, and a distributor's view of them.
func accessBenchCluster(b *testing.B) (*fakeRing, *Pool, []*accessNode) {
	b.Helper()
	var nodes []*accessNode
	var members []ring.Member
	for i := range 3 {
		n := startAccessNode(b, "i"+strconv.Itoa(i))
		nodes = append(nodes, n)
		members = append(members, n.member(ring.StateActive))
	}
	f := newFakeRing(b, distributorSelf, members...)
	pool := NewPool()
	b.Cleanup(pool.Close)
	return f, pool, nodes
}

// BenchmarkAccessShipOnce is one shipping round of 1,000 distinct metrics'
// statistics (what a busy distributor's tap sees in a ship interval) to
// their owners among three ingesters.
func BenchmarkAccessShipOnce(b *testing.B) {
	const metrics = 1000
	f, pool, _ := accessBenchCluster(b)
	outbox := usage.NewAccessStats(1_000_000, 10)
	s := NewAccessShipper(time.Hour, 5*time.Second, AccessShipperDeps{Ring: f, Clients: pool, Outbox: outbox})
	refs := make([]*promqlx.Refs, metrics)
	for i := range refs {
		r, err := promqlx.Extract(`sum by (job) (rate(metric_` + strconv.Itoa(i) + `[5m]))`)
		require.NoError(b, err)
		refs[i] = r
	}
	at := time.Unix(1700000000, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, r := range refs {
			outbox.RecordQuery("t", r, "alice", at)
		}
		b.StartTimer()
		if err := s.ShipOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(metrics*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkFanOutAccess is one classification round's read of the query
// statistics of 10,000 metrics held by three ingesters.
func BenchmarkFanOutAccess(b *testing.B) {
	const metrics = 10_000
	f, pool, nodes := accessBenchCluster(b)
	at := time.Unix(1700000000, 0)
	for i := range metrics {
		r, err := promqlx.Extract(`sum by (job) (metric_` + strconv.Itoa(i) + `)`)
		require.NoError(b, err)
		nodes[i%3].access.RecordQuery("t", r, "alice", at)
	}
	fo := NewFanOut(DefaultConfig(), FanOutDeps{Members: f, Clients: pool})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		snap, err := fo.Access(ctx)
		if err != nil || len(snap.Metrics) != metrics {
			b.Fatalf("metrics %d, err %v", len(snap.Metrics), err)
		}
	}
}
