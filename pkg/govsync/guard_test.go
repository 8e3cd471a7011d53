package govsync

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/govstore"
)

// meter is a DropMeter whose totals the test moves.
type meter struct{ received, dropped atomic.Uint64 }

func (m *meter) GovernanceDrops() (uint64, uint64) { return m.received.Load(), m.dropped.Load() }

func (m *meter) add(received, dropped uint64) {
	m.received.Add(received)
	m.dropped.Add(dropped)
}

func TestGuard(t *testing.T) {
	cfg := govstore.AutoRollbackConfig{MaxDropShare: 0.2, Window: time.Minute, MinSamples: 1000}
	tests := map[string]struct {
		// before: received and dropped under the version active before the
		// judged one; after: under the judged one.
		before, after [2]uint64
		elapsed       time.Duration // since the judged version became active
		author        string
		rolledBack    bool
	}{
		"drops 90% of samples":                         {before: [2]uint64{5000, 0}, after: [2]uint64{2000, 1800}, rolledBack: true},
		"no baseline yet: judged against nothing":      {before: [2]uint64{10, 0}, after: [2]uint64{2000, 1800}, rolledBack: true},
		"drops 15%: under the threshold":               {before: [2]uint64{5000, 0}, after: [2]uint64{2000, 300}},
		"the previous version dropped 50% already":     {before: [2]uint64{5000, 2500}, after: [2]uint64{2000, 1300}},
		"too few samples to judge":                     {before: [2]uint64{5000, 0}, after: [2]uint64{999, 999}},
		"after the window":                             {before: [2]uint64{5000, 0}, after: [2]uint64{2000, 1800}, elapsed: 2 * time.Minute},
		"a version the guard wrote is not rolled back": {before: [2]uint64{5000, 0}, after: [2]uint64{2000, 1800}, author: AutoRollbackAuthor},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			store, v1 := seededStore(t, t.TempDir())
			ctx := context.Background()
			m := &meter{}
			var notified []uint64
			reg := prometheus.NewRegistry()
			g := NewGuard(cfg, m, store, func(n uint64) { notified = append(notified, n) }, nil, reg)
			now := time.Unix(1000, 0)
			g.now = func() time.Time { return now }

			g.Activated(v1) // start-up: not judged
			m.add(tc.before[0], tc.before[1])
			author := tc.author
			if author == "" {
				author = "alice"
			}
			v2, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("two"), IfMatch: 1, Author: author})
			require.NoError(t, err)
			g.Activated(v2)
			m.add(tc.after[0], tc.after[1])
			now = now.Add(tc.elapsed)
			g.check(ctx)

			st, err := store.Resolve(ctx)
			require.NoError(t, err)
			if !tc.rolledBack {
				require.EqualValues(t, 2, st.Active.Number)
				require.Empty(t, notified)
				require.Zero(t, testutil.ToFloat64(g.rollbacks))
				return
			}
			require.EqualValues(t, 3, st.Active.Number)
			require.Equal(t, AutoRollbackAuthor, st.Active.Author)
			require.Equal(t, v1.Hash, st.Active.Hash, "version 1's body is active again")
			require.Contains(t, st.Active.Message, "automatic rollback of version 2 to version 1")
			require.Equal(t, []uint64{3}, notified)
			require.InDelta(t, 1, testutil.ToFloat64(g.rollbacks), 0)
			// Judged once: the next check does nothing.
			g.check(ctx)
			require.Equal(t, []uint64{3}, notified)
		})
	}

	t.Run("another distributor rolled back first", func(t *testing.T) {
		store, v1 := seededStore(t, t.TempDir())
		ctx := context.Background()
		m := &meter{}
		g := NewGuard(cfg, m, store, func(uint64) { t.Fatal("no notice expected") }, nil, nil)
		g.Activated(v1)
		v2, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("two"), IfMatch: 1, Author: "alice"})
		require.NoError(t, err)
		g.Activated(v2)
		_, err = store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("one"), IfMatch: 2, Author: AutoRollbackAuthor})
		require.NoError(t, err)
		m.add(2000, 1800)
		g.check(ctx)
		st, err := store.Resolve(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, st.Head, "nothing more written")
	})

	require.Nil(t, NewGuard(govstore.AutoRollbackConfig{}, &meter{}, nil, nil, nil, nil), "off without max_drop_share")
	require.Nil(t, NewGuard(cfg, nil, nil, nil, nil, nil), "off without a meter (ingesters)")
}
