package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
)

// TestSketchSyncTenantLimit: a tenant limit of 100 with 80 series on one
// ingester leaves room for 20 on the other once it has synced, and for
// more again once the first has left.
func TestSketchSyncTenantLimit(t *testing.T) {
	cfg := limitsConfig(cardinality.Limits{MaxSeriesPerTenant: 100, MaxSeriesPerTenantMode: cardinality.ModeEnforce})
	a, b := startNode(t, "a", cfg), startNode(t, "b", cfg)
	require.Equal(t, 80, observe(a.tracker, "t", "on_a", 0, 80))

	f := newFakeRing(t, b.member(ring.StateActive), a.member(ring.StateActive), b.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	s := NewSketchSync(testConfig(), SketchSyncDeps{Members: f, Clients: pool, Store: b.tracker})
	s.SyncOnce(context.Background())

	admitted := observe(b.tracker, "t", "on_b", 0, 50)
	require.InDelta(t, 20, admitted, 1, "b enforces against the cluster-wide total")

	// a leaves: b forgets its sketch and has room again.
	f.set(t, b.member(ring.StateActive))
	s.SyncOnce(context.Background())
	b.tracker.Rotate(time.Now())
	require.Equal(t, 20, observe(b.tracker, "t", "on_b", 50, 70))
}

// TestSketchSyncRun drives the loop itself: the peer's sketch arrives
// without an explicit SyncOnce, and Run returns when its context ends.
func TestSketchSyncRun(t *testing.T) {
	cfg := limitsConfig(cardinality.Limits{MaxSeriesPerTenant: 10, MaxSeriesPerTenantMode: cardinality.ModeEnforce})
	a, b := startNode(t, "a", cfg), startNode(t, "b", cfg)
	require.Equal(t, 10, observe(a.tracker, "t", "m", 0, 10))
	f := newFakeRing(t, b.member(ring.StateActive), a.member(ring.StateActive), b.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- NewSketchSync(testConfig(), SketchSyncDeps{Members: f, Clients: pool, Store: b.tracker}).Run(ctx)
	}()
	i := 0
	require.Eventually(t, func() bool {
		i++ // a new series each time: an admitted one would keep flowing
		return !b.tracker.Observe(series("t", "other", i), time.Now()).Admit
	}, 10*time.Second, 20*time.Millisecond, "b learns that the tenant is at its limit")
	cancel()
	require.NoError(t, <-done)
}

// TestSketchSyncPeerDown: a peer that does not answer is counted as a
// failure and does not stop the others from syncing.
func TestSketchSyncPeerDown(t *testing.T) {
	cfg := limitsConfig(cardinality.Limits{MaxSeriesPerTenant: 30, MaxSeriesPerTenantMode: cardinality.ModeEnforce})
	a, b, c := startNode(t, "a", cfg), startNode(t, "b", cfg), startNode(t, "c", cfg)
	observe(a.tracker, "t", "m", 0, 20)
	c.stop()
	f := newFakeRing(t, b.member(ring.StateActive), a.member(ring.StateActive), b.member(ring.StateActive), c.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	cc := testConfig()
	cc.SyncTimeout = 2 * time.Second
	NewSketchSync(cc, SketchSyncDeps{Members: f, Clients: pool, Store: b.tracker}).SyncOnce(context.Background())
	require.InDelta(t, 10, observe(b.tracker, "t", "n", 0, 20), 1)
}
