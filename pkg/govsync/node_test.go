package govsync

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ring"
)

// downBucket fails every listing until up is set: a store unreachable when
// the first distributor starts (a fault a real bucket cannot produce on
// demand).
type downBucket struct {
	objstore.Bucket
	up       atomic.Bool
	attempts atomic.Int64
}

func (b *downBucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...objstore.IterOption) error {
	b.attempts.Add(1)
	if !b.up.Load() {
		return errors.New("connection refused")
	}
	return b.Bucket.Iter(ctx, dir, f, opts...)
}

type noMembers struct{}

func (noMembers) Members() []ring.Member { return nil }
func (noMembers) NumMembers() int        { return 1 }

// TestSeedRetriesUntilTheStoreIsUp: a store that is down at start-up is
// seeded from the file once it is back, without a restart.
func TestSeedRetriesUntilTheStoreIsUp(t *testing.T) {
	fs, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	bkt := &downBucket{Bucket: fs}
	store := govstore.New(bkt)
	file := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(file, ruleDoc("one"), 0o644))
	applied := make(chan string, 4)
	n := &Node{cfg: govstore.Config{FileMode: govstore.FileModeStore, Timeout: time.Second}, role: config.RoleDistributor,
		file: file, store: store, logger: slog.New(slog.DiscardHandler)}
	n.applyFn = func(doc govstore.Document) error {
		applied <- doc.Rules[0].Name
		return nil
	}
	n.syncer = New(store, n.apply, noMembers{}, Options{Node: "d", Role: "distributor", PollInterval: time.Hour, Timeout: time.Second})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	require.Eventually(t, func() bool { return bkt.attempts.Load() >= 3 }, 10*time.Second, 10*time.Millisecond, "seeding is retried")
	bkt.up.Store(true)
	select {
	case name := <-applied:
		require.Equal(t, "one", name, "the seed became the active version")
	case <-time.After(30 * time.Second):
		t.Fatal("the store was never seeded after it came back")
	}
	st, err := store.Resolve(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Active.Number)
	cancel()
	require.NoError(t, <-done)
}
