package retro

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

// clock is a Now the test moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func TestCollectable(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	old, recent := now.Add(-2*time.Hour), now.Add(-time.Minute)
	for name, c := range map[string]struct {
		state     string
		updated   time.Time
		retention time.Duration
		want      bool
	}{
		"succeeded, old":         {StateSucceeded, old, time.Hour, true},
		"failed, old":            {StateFailed, old, time.Hour, true},
		"cancelled, old":         {StateCancelled, old, time.Hour, true},
		"succeeded, recent":      {StateSucceeded, recent, time.Hour, false},
		"paused, old: kept":      {StatePaused, old, time.Hour, false},
		"running, old: kept":     {StateRunning, old, time.Hour, false},
		"retention 0: forever":   {StateSucceeded, old, 0, false},
		"queued, old: not ended": {StateQueued, old, time.Hour, false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, c.want, collectable(&Job{State: c.state, Updated: c.updated}, c.retention, now))
		})
	}
}

// TestEndedJobsAreRemovedAfterRetention: without a store, an ended job and
// its files go once unchanged for the retention; a paused one stays.
func TestEndedJobsAreRemovedAfterRetention(t *testing.T) {
	be := newMem()
	fill(be, 2)
	cfg := testConfig(t)
	cfg.Retention = time.Hour
	cfg.ScanInterval = 10 * time.Millisecond
	clk := &clock{}
	reg := prometheus.NewRegistry()
	m, err := NewManager(ManagerDeps{Config: cfg, Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"},
		NewBackend: func(HTTPBackendConfig) (Backend, error) { return be, nil }, Now: clk.now, Registerer: reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	ended := wait(t, m, submit(t, m, spec(ModeDryRun, false)).ID, StateSucceeded)
	be.mu.Lock()
	be.failReadAfter = 1
	be.reads = 0
	be.mu.Unlock()
	paused := wait(t, m, submit(t, m, spec(ModeExecute, false)).ID, StatePaused)
	require.DirExists(t, filepath.Join(cfg.Directory, ended.ID))

	clk.advance(2 * time.Hour)
	require.Eventually(t, func() bool { _, err := m.Get(ended.ID); return err != nil }, 10*time.Second, 10*time.Millisecond)
	assert.NoDirExists(t, filepath.Join(cfg.Directory, ended.ID))
	_, err = m.Get(paused.ID)
	assert.NoError(t, err, "a paused job was removed")
	assert.DirExists(t, filepath.Join(cfg.Directory, paused.ID))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.metrics.removed))
	_, err = os.Stat(filepath.Join(cfg.Directory, ended.ID, "job.json"))
	assert.True(t, os.IsNotExist(err))
}

// TestStoreRemovesEndedJobObjects: with a store, the ring's coordinator of
// an ended job removes every object of it (record, plan, output) once past
// the retention.
func TestStoreRemovesEndedJobObjects(t *testing.T) {
	mem := newMem()
	fill(mem, 4)
	bkt := objstore.NewInMemBucket()
	clk := &clock{}
	cfg := coordConfig(t)
	cfg.Retention = time.Hour
	d := ManagerDeps{Config: cfg, Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"},
		NewBackend: func(HTTPBackendConfig) (Backend, error) { return mem, nil }, Store: NewBucketStore(bkt), Now: clk.now,
		Coordination: &Coordination{Self: "a", Owner: func(string) (string, bool) { return "a", true }}}
	m, err := NewManager(d)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	s := spec(ModeOpenMetrics, false)
	s.Candidate = renameOnly
	j := submit(t, m, s)
	waitStore(t, m, j.ID, inState(StateSucceeded), "job never succeeded")
	objects := func() []string {
		var keys []string
		require.NoError(t, bkt.Iter(context.Background(), jobsPrefix, func(k string) error { keys = append(keys, k); return nil }, objstore.WithRecursiveIter()))
		return keys
	}
	keys := strings.Join(objects(), " ")
	assert.Contains(t, keys, "/plan.json")
	assert.Contains(t, keys, "/openmetrics/batch-000000.om")

	clk.advance(2 * time.Hour)
	require.Eventually(t, func() bool { return len(objects()) == 0 }, 10*time.Second, 10*time.Millisecond, "objects left: %v", objects())
	_, err = m.GetJob(context.Background(), j.ID)
	assert.ErrorIs(t, err, ErrNotFound)
}
