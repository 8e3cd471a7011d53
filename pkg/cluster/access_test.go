package cluster

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/promqlx"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// accessNode is an ingester with cardinality and query statistics, served
// over real gRPC on loopback as the ingester binary wires them.
type accessNode struct {
	*testNode
	access *usage.AccessStats
}

func startAccessNode(t testing.TB, name string) *accessNode {
	t.Helper()
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	access := usage.NewAccessStats(100_000, 10)
	a := ingester.NewAnalytics(ingester.AnalyticsDeps{Node: name, State: tr, Access: access})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ingesterv1.RegisterClusterServiceServer(srv, a)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return &accessNode{testNode: &testNode{name: name, addr: ln.Addr().String(), tracker: tr, srv: srv}, access: access}
}

var distributorSelf = ring.Member{Name: "distributor", Role: ring.RoleDistributor, State: ring.StateActive}

// recordQuery records one query of metric by user into outbox.
func recordQuery(t *testing.T, outbox *usage.AccessStats, tenant, q, user string) {
	t.Helper()
	refs, err := promqlx.Extract(q)
	require.NoError(t, err)
	outbox.RecordQuery(tenant, refs, user, time.Unix(1700000000, 0))
}

func accessMetrics(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("metric_%02d", i)
	}
	return out
}

// ownerOf returns the node owning tenant's key.
func ownerOf(t *testing.T, p *ring.Placement, tenant, key string) string {
	t.Helper()
	m, ok := p.Owner(ring.Key(nil, tenant, key))
	require.True(t, ok)
	return m.Name
}

// TestAccessShipperDeliversToOwners: a distributor records queries of 30
// metrics and one name pattern; one shipment puts each metric's statistics
// on its owner only, and the fan-out reads them back merged.
func TestAccessShipperDeliversToOwners(t *testing.T) {
	nodes := []*accessNode{startAccessNode(t, "a"), startAccessNode(t, "b"), startAccessNode(t, "c")}
	f := newFakeRing(t, distributorSelf, nodes[0].member(ring.StateActive), nodes[1].member(ring.StateActive), nodes[2].member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	outbox := usage.NewAccessStats(1000, 10)
	reg := prometheus.NewRegistry()
	s := NewAccessShipper(time.Hour, 5*time.Second, AccessShipperDeps{Ring: f, Clients: pool, Outbox: outbox, Registerer: reg})

	metrics := accessMetrics(30)
	for i, m := range metrics {
		for range i%3 + 1 {
			recordQuery(t, outbox, "t", fmt.Sprintf(`sum by (job) (rate(%s[5m]))`, m), "alice")
		}
	}
	recordQuery(t, outbox, "t", `{__name__=~"node_.*"}`, "bob")
	require.NoError(t, s.ShipOnce(context.Background()))
	require.Zero(t, outbox.Len(), "the outbox is drained")
	require.Equal(t, 31.0, testutil.ToFloat64(s.sent))

	p := f.Placement()
	for i, m := range metrics {
		owner := ownerOf(t, p, "t", m)
		for _, n := range nodes {
			a, ok := n.access.Metric("t", m, false)
			if n.name != owner {
				require.False(t, ok, "%s is only on its owner %s, not on %s", m, owner, n.name)
				continue
			}
			require.True(t, ok, "%s is on its owner %s", m, owner)
			require.Equal(t, uint64(i%3+1), a.Count)
			require.Contains(t, a.Labels, "job")
			require.Contains(t, a.Users, "alice")
		}
	}
	patternOwner := ownerOf(t, p, "t", usage.PatternKey("node_.*", false))
	for _, n := range nodes {
		require.Equal(t, n.name == patternOwner, len(n.access.Snapshot().Patterns) == 1, "the pattern is on %s only", patternOwner)
	}

	fo := NewFanOut(testConfig(), FanOutDeps{Members: f, Clients: pool})
	snap, err := fo.Access(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Metrics, 30)
	for i, m := range metrics {
		require.Equal(t, uint64(i%3+1), snap.Metrics[m].Count, m)
	}
	require.Len(t, snap.Patterns, 1)
	require.Equal(t, "node_.*", snap.Patterns[0].Pattern.Regex)
}

// TestAccessShipperKeepsWhatFailed: an owner that does not answer keeps its
// share in the outbox, and the fan-out reports the statistics incomplete.
// Once the ring moves that share to the survivors, the next round delivers
// it: every query is counted exactly once.
func TestAccessShipperKeepsWhatFailed(t *testing.T) {
	a, b, c := startAccessNode(t, "a"), startAccessNode(t, "b"), startAccessNode(t, "c")
	f := newFakeRing(t, distributorSelf, a.member(ring.StateActive), b.member(ring.StateActive), c.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	outbox := usage.NewAccessStats(1000, 10)
	s := NewAccessShipper(time.Hour, 2*time.Second, AccessShipperDeps{Ring: f, Clients: pool, Outbox: outbox, Registerer: prometheus.NewRegistry()})
	metrics := accessMetrics(30)
	for _, m := range metrics {
		recordQuery(t, outbox, "t", m, "")
	}
	c.stop()

	onC := 0
	for _, m := range metrics {
		if ownerOf(t, f.Placement(), "t", m) == "c" {
			onC++
		}
	}
	require.Positive(t, onC)
	require.Error(t, s.ShipOnce(context.Background()))
	require.Equal(t, onC, outbox.Len(), "exactly c's share waits in the outbox")
	require.Equal(t, 1.0, testutil.ToFloat64(s.failed))

	fo := NewFanOut(testConfig(), FanOutDeps{Members: f, Clients: pool})
	partial, err := fo.Access(context.Background())
	require.Error(t, err, "an ingester that does not answer makes the statistics incomplete")
	require.Len(t, partial.Metrics, 30-onC, "what did answer is still returned")

	f.set(t, a.member(ring.StateActive), b.member(ring.StateActive))
	require.NoError(t, s.ShipOnce(context.Background()))
	require.Zero(t, outbox.Len())
	full, err := fo.Access(context.Background())
	require.NoError(t, err)
	require.Len(t, full.Metrics, 30)
	for _, m := range metrics {
		require.Equal(t, uint64(1), full.Metrics[m].Count, "%s counted once", m)
	}
}

// TestAccessShipperRunShipsOnStop: the last round runs when Run stops.
func TestAccessShipperRunShipsOnStop(t *testing.T) {
	a := startAccessNode(t, "a")
	f := newFakeRing(t, distributorSelf, a.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	outbox := usage.NewAccessStats(1000, 10)
	s := NewAccessShipper(time.Hour, 2*time.Second, AccessShipperDeps{Ring: f, Clients: pool, Outbox: outbox})
	recordQuery(t, outbox, "t", "up", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	require.NoError(t, <-done)
	got, ok := a.access.Metric("t", "up", false)
	require.True(t, ok)
	require.Equal(t, uint64(1), got.Count)
}

// TestHandoffMovesAccess: query statistics move with a metric's
// cardinality state when a new ingester takes it over.
func TestHandoffMovesAccess(t *testing.T) {
	a, b := startAccessNode(t, "a"), startAccessNode(t, "b")
	metrics := accessMetrics(20)
	for _, m := range metrics {
		observe(a.tracker, "t", m, 0, 3)
		refs, err := promqlx.Extract(m)
		require.NoError(t, err)
		a.access.RecordQuery("t", refs, "alice", time.Unix(1700000000, 0))
	}
	f := newFakeRing(t, b.member(ring.StateActive), a.member(ring.StateActive), b.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	h := NewHandoff(testConfig(), HandoffDeps{Ring: f, Clients: pool, Store: b.tracker, Access: b.access})
	require.Positive(t, h.Pull(context.Background(), f.Placement()))

	moved := 0
	for _, m := range metrics {
		_, onA := a.access.Metric("t", m, false)
		onB, okB := b.access.Metric("t", m, false)
		if ownerOf(t, f.Placement(), "t", m) != "b" {
			require.True(t, onA, "%s stays on a", m)
			require.False(t, okB)
			continue
		}
		moved++
		require.False(t, onA, "%s's statistics left a", m)
		require.True(t, okB, "%s's statistics arrived on b", m)
		require.Equal(t, uint64(1), onB.Count)
		require.Contains(t, onB.Users, "alice")
	}
	require.Positive(t, moved)
}
