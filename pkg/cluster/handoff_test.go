package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
)

// TestHandoffOnJoin: a owns 40 metrics, each at its limit of 10 series.
// b joins; after the pull the metrics b now owns live on b (and no longer
// on a), their admitted series keep flowing and new ones are refused.
func TestHandoffOnJoin(t *testing.T) {
	cfg := limitsConfig(cardinality.Limits{MaxSeriesPerMetric: 10, MaxSeriesPerMetricMode: cardinality.ModeEnforce})
	a, b := startNode(t, "a", cfg), startNode(t, "b", cfg)
	metrics := make([]string, 40)
	for i := range metrics {
		metrics[i] = "metric_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		require.Equal(t, 10, observe(a.tracker, "t", metrics[i], 0, 15))
	}
	f := newFakeRing(t, b.member(ring.StateActive), a.member(ring.StateActive))
	f.set(t, a.member(ring.StateActive), b.member(ring.StateActive))
	pool := NewPool()
	defer pool.Close()
	h := NewHandoff(testConfig(), HandoffDeps{Ring: f, Clients: pool, Store: b.tracker})
	n := h.Pull(context.Background(), f.Placement())

	p := f.Placement()
	moved := 0
	for _, m := range metrics {
		owner, ok := p.Owner(ring.Key(nil, "t", m))
		require.True(t, ok)
		onA, err := a.tracker.Metric(context.Background(), m, cardinality.Query{Tenant: "t"})
		require.NoError(t, err)
		onB, err := b.tracker.Metric(context.Background(), m, cardinality.Query{Tenant: "t"})
		require.NoError(t, err)
		if owner.Name != "b" {
			require.Len(t, onA, 1, "%s stays on a", m)
			require.Empty(t, onB)
			continue
		}
		moved++
		require.Empty(t, onA, "%s was forgotten by a", m)
		require.Len(t, onB, 1, "%s was pulled by b", m)
		require.Equal(t, uint64(15), onB[0].Series, "the demand moved too")
		require.Equal(t, uint64(5), onB[0].RefusedSeries)
		require.Equal(t, 10, observe(b.tracker, "t", m, 0, 10), "admitted series keep flowing on the new owner")
		require.Equal(t, 0, observe(b.tracker, "t", m, 100, 105), "the limit still holds on the new owner")
	}
	require.Equal(t, moved, n)
	require.Positive(t, moved)
	require.Less(t, moved, len(metrics))

	// A second pull finds nothing left to move.
	require.Zero(t, h.Pull(context.Background(), f.Placement()))
}

// TestHandoffRun drives the loop: a placement change triggers the pull
// (and the settle pull picks up what reached the old owner afterwards).
func TestHandoffRun(t *testing.T) {
	cfg := limitsConfig(cardinality.Limits{MaxSeriesPerMetric: 5, MaxSeriesPerMetricMode: cardinality.ModeEnforce})
	a, b := startNode(t, "a", cfg), startNode(t, "b", cfg)
	f := newFakeRing(t, b.member(ring.StateActive), a.member(ring.StateActive))
	var mine string
	p2, err := ring.NewPlacement(testPlacement, []ring.Member{a.member(ring.StateActive), b.member(ring.StateActive)})
	require.NoError(t, err)
	for i := 0; mine == ""; i++ {
		m := "metric_" + string(rune('a'+i))
		if o, _ := p2.Owner(ring.Key(nil, "t", m)); o.Name == "b" {
			mine = m
		}
	}
	require.Equal(t, 5, observe(a.tracker, "t", mine, 0, 8))

	pool := NewPool()
	defer pool.Close()
	cc := testConfig()
	cc.HandoffSettle = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewHandoff(cc, HandoffDeps{Ring: f, Clients: pool, Store: b.tracker}).Run(ctx) }()

	has := func(tr *cardinality.Tracker) bool {
		rows, err := tr.Metric(context.Background(), mine, cardinality.Query{Tenant: "t"})
		require.NoError(t, err)
		return len(rows) == 1
	}
	f.set(t, a.member(ring.StateActive), b.member(ring.StateActive))
	require.Eventually(t, func() bool { return has(b.tracker) && !has(a.tracker) }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, observe(b.tracker, "t", mine, 10, 12), "limit holds after the pull")

	// A straggler reaches the old owner after the first pull (a distributor
	// had not seen the change yet); the settle pull moves it too.
	observe(a.tracker, "t", mine, 3, 4)
	require.Eventually(t, func() bool { return !has(a.tracker) }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestHandoffPullsFromUnplacedLeaver: b joined, pulled a metric from a (a
// forgot it) and began to leave before gossip told a that b was ACTIVE,
// so a first sees b LEAVING and its placement (a alone) never changes. a
// must still pull the metric back while b drains, or its state is lost
// when b goes (TestCardinalityStateSurvivesRestartAndScaleDown).
func TestHandoffPullsFromUnplacedLeaver(t *testing.T) {
	cfg := limitsConfig(cardinality.Limits{MaxSeriesPerMetric: 5, MaxSeriesPerMetricMode: cardinality.ModeEnforce})
	a, b := startNode(t, "a", cfg), startNode(t, "b", cfg)
	const metric = "moved_metric"
	f := newFakeRing(t, a.member(ring.StateActive), a.member(ring.StateActive))
	fp := f.Placement().Fingerprint()

	pool := NewPool()
	defer pool.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reg := prometheus.NewRegistry()
	go func() {
		done <- NewHandoff(testConfig(), HandoffDeps{Ring: f, Clients: pool, Store: a.tracker, Registerer: reg}).Run(ctx)
	}()
	// a's pull at start is over before b takes the metric (as if it had
	// pulled it from a), so only a later pull can bring it back.
	require.Eventually(t, func() bool {
		return lastPull(t, reg) > 0
	}, 5*time.Second, 10*time.Millisecond, "a's handoff never pulled at start")
	require.Equal(t, 5, observe(b.tracker, "t", metric, 0, 8), "b holds the metric it pulled from a")

	has := func(tr *cardinality.Tracker) bool {
		rows, err := tr.Metric(context.Background(), metric, cardinality.Query{Tenant: "t"})
		require.NoError(t, err)
		return len(rows) == 1
	}
	f.set(t, a.member(ring.StateActive), b.member(ring.StateLeaving))
	require.Equal(t, fp, f.Placement().Fingerprint(), "a LEAVING ingester changes no placement")
	require.Eventually(t, func() bool { return has(a.tracker) && !has(b.tracker) }, 5*time.Second, 10*time.Millisecond,
		"a never pulled the metric back from the leaving b")
	require.Equal(t, 0, observe(a.tracker, "t", metric, 10, 12), "the limit holds on a")
	cancel()
	require.NoError(t, <-done)
}

// lastPull is the handoff's promgov_cluster_handoff_last_timestamp_seconds
// as gathered from reg (0 before the first pull ends).
func lastPull(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "promgov_cluster_handoff_last_timestamp_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
