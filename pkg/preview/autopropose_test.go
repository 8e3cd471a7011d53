package preview

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/usage"
)

// TestAutoPropose: the policy proposes an enabled kind's suggestion once,
// as a shadow version it never promotes; it does not propose it again,
// rejected or not, nor what it is not enabled for.
func TestAutoPropose(t *testing.T) {
	tf := knownTraffic(t)
	ctx := context.Background()
	costs := usage.StaticCosts{{Name: "debug_events_total", Series: 20, SamplesRate: 2, Labels: []usage.LabelCost{{Name: "instance"}}}}
	mgr, err := usage.NewManager(usage.DefaultConfig(), usage.Deps{Access: usage.NewAccessStats(10, 10), Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	mgr.Refresh(ctx)

	newStore := func(t *testing.T) *govstore.Store {
		bkt, err := filesystem.NewBucket(t.TempDir())
		require.NoError(t, err)
		store := govstore.New(bkt)
		_, err = store.Write(ctx, govstore.WriteRequest{Body: []byte("rules: []\n"), IfMatch: 0, Author: "seed"})
		require.NoError(t, err)
		return store
	}
	newPolicy := func(t *testing.T, store *govstore.Store, cfg govstore.AutoProposeConfig, reg prometheus.Registerer) *AutoProposer {
		p := NewProposer(ProposeDeps{Store: store, Usage: mgr, Cluster: local{NewIngester(tf.res, tf.tracker, nil)}, Rules: activeRules(t, ""), Timeout: 10 * time.Second})
		return NewAutoProposer(cfg, p, slog.New(slog.DiscardHandler), reg)
	}
	on := govstore.AutoProposeConfig{Interval: time.Hour, Kinds: []string{usage.SuggestDropMetrics}, MaxPerRun: 1, MinSeriesSaved: 10}

	t.Run("proposed once, never promoted", func(t *testing.T) {
		store := newStore(t)
		reg := prometheus.NewRegistry()
		a := newPolicy(t, store, on, reg)
		wrote := a.RunOnce(ctx)
		require.Equal(t, []uint64{2}, wrote)
		st, err := store.Resolve(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.Active.Number, "nothing enforced")
		require.EqualValues(t, 2, st.Shadow.Number)
		require.Equal(t, AutoProposeAuthor, st.Shadow.Author)
		require.Contains(t, st.Shadow.Message, "proposal from suggestion ")
		kept, err := store.Proposal(ctx, 2)
		require.NoError(t, err)
		require.NotEmpty(t, kept, "the preview is kept beside it, like a person's proposal")

		require.Empty(t, a.RunOnce(ctx), "already proposed")
		_, err = store.Reject(ctx, 2, "alice", "not now")
		require.NoError(t, err)
		require.Empty(t, a.RunOnce(ctx), "a rejected proposal is not proposed again")
		require.Equal(t, 1.0, testutil.ToFloat64(a.runs.WithLabelValues("proposed")))
	})

	for name, cfg := range map[string]govstore.AutoProposeConfig{
		"kind not enabled": {Interval: time.Hour, Kinds: []string{usage.SuggestAggregation}, MaxPerRun: 1},
		"saves too little": {Interval: time.Hour, Kinds: []string{usage.SuggestDropMetrics}, MaxPerRun: 1, MinSeriesSaved: 1000},
	} {
		t.Run(name, func(t *testing.T) {
			store := newStore(t)
			require.Empty(t, newPolicy(t, store, cfg, prometheus.NewRegistry()).RunOnce(ctx))
			head, err := store.Head(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, head)
		})
	}

	t.Run("off", func(t *testing.T) {
		for _, cfg := range []govstore.AutoProposeConfig{{Kinds: on.Kinds, MaxPerRun: 1}, {Interval: time.Hour, MaxPerRun: 1}} {
			a := newPolicy(t, newStore(t), cfg, prometheus.NewRegistry())
			require.Nil(t, a)
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			require.NoError(t, a.Run(ctx), "a nil policy waits for its context")
		}
	})

	t.Run("runs on its interval until stopped", func(t *testing.T) {
		store := newStore(t)
		cfg := on
		cfg.Interval = 10 * time.Millisecond
		a := newPolicy(t, store, cfg, prometheus.NewRegistry())
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		require.Eventually(t, func() bool {
			head, err := store.Head(context.Background())
			return err == nil && head == 2
		}, 10*time.Second, 10*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
	})
}
