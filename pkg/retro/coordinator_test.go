package retro

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	ttl := 30 * time.Second
	fresh, stale := now.Add(-time.Second), now.Add(-time.Minute)
	for _, c := range []struct {
		name      string
		job       Job
		ringOwner string
		ok        bool
		running   bool
		want      decision
	}{
		{"queued, ours, no owner", Job{State: StateQueued}, "a", true, false, claim},
		{"queued, not ours", Job{State: StateQueued}, "b", true, false, leave},
		{"no ACTIVE ingester", Job{State: StateQueued}, "", false, false, leave},
		{"ours by the ring, live owner elsewhere: wait", Job{State: StateRunning, Owner: "b", LeaseRenewed: fresh}, "a", true, false, leave},
		{"ours by the ring, owner's lease expired: take over", Job{State: StateRunning, Owner: "b", LeaseRenewed: stale}, "a", true, false, claim},
		{"ours, our own stale claim (restart)", Job{State: StatePlanning, Owner: "a", LeaseRenewed: fresh}, "a", true, false, claim},
		{"paused: nothing to run", Job{State: StatePaused}, "a", true, false, leave},
		{"succeeded", Job{State: StateSucceeded}, "a", true, false, leave},
		{"running here, still ours", Job{State: StateRunning, Owner: "a", LeaseRenewed: fresh}, "a", true, true, renew},
		{"running here, ring moved it", Job{State: StateRunning, Owner: "a", LeaseRenewed: fresh}, "b", true, true, release},
		{"running here, no ACTIVE ingester", Job{State: StateRunning, Owner: "a", LeaseRenewed: fresh}, "", false, true, release},
		{"running here, taken over", Job{State: StateRunning, Owner: "b", LeaseRenewed: fresh}, "a", true, true, yield},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := c.job
			assert.Equal(t, c.want, decide(&j, "a", c.ringOwner, c.ok, c.running, now, ttl))
		})
	}
}

// deadBucket fails every operation once killed: a node that died (or lost
// the store) cannot write anything more.
type deadBucket struct {
	objstore.Bucket
	dead atomic.Bool
}

var errDead = errors.New("node is dead")

func (b *deadBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Bucket.Upload(ctx, name, r, opts...)
}

func (b *deadBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if b.dead.Load() {
		return nil, errDead
	}
	return b.Bucket.Get(ctx, name)
}

func (b *deadBucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...objstore.IterOption) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Bucket.Iter(ctx, dir, f, opts...)
}

// ringView is the ring as the test decides it, per node.
type ringView struct {
	mu    sync.Mutex
	owner map[string]string // node → whom it believes coordinates every job
}

func (r *ringView) set(node, owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owner[node] = owner
}

func (r *ringView) of(node string) func(string) (string, bool) {
	return func(string) (string, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.owner[node], r.owner[node] != ""
	}
}

func coordConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.LeaseTTL = 600 * time.Millisecond
	cfg.ScanInterval = 100 * time.Millisecond
	return cfg
}

// startNode runs a Manager on bkt: a coordinator named self when rv is
// set, else a front end (a distributor).
func startNode(t *testing.T, bkt objstore.Bucket, be Backend, self string, rv *ringView) (*Manager, func()) {
	t.Helper()
	var owner func(string) (string, bool)
	if rv != nil {
		owner = rv.of(self)
	}
	return startNodeOwner(t, bkt, be, self, owner)
}

// startNodeOwner is startNode with the ring's answer as owner (nil: a front
// end).
func startNodeOwner(t *testing.T, bkt objstore.Bucket, be Backend, self string, owner func(string) (string, bool)) (*Manager, func()) {
	t.Helper()
	d := ManagerDeps{Config: coordConfig(t), Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"},
		NewBackend: func(HTTPBackendConfig) (Backend, error) { return be, nil }, Store: NewBucketStore(bkt)}
	if owner != nil {
		d.Coordination = &Coordination{Self: self, Owner: owner}
	}
	m, err := NewManager(d)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(stop)
	return m, stop
}

func waitStore(t *testing.T, m *Manager, id string, ok func(*Job) bool, msg string) *Job {
	t.Helper()
	var j *Job
	require.Eventually(t, func() bool {
		var err error
		j, err = m.GetJob(context.Background(), id)
		require.NoError(t, err)
		return ok(j)
	}, 20*time.Second, 5*time.Millisecond, msg)
	return j
}

func inState(s string) func(*Job) bool { return func(j *Job) bool { return j.State == s } }

func logHas(j *Job, s string) bool {
	for _, l := range j.Log {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestCoordinatorRunsQueuedJob(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	bkt := objstore.NewInMemBucket()
	rv := &ringView{owner: map[string]string{"a": "b", "b": "b"}}
	front, _ := startNode(t, bkt, mem, "", nil)
	startNode(t, bkt, mem, "a", rv)
	startNode(t, bkt, mem, "b", rv)

	j := submit(t, front, spec(ModeExecute, true))
	assert.Equal(t, StateQueued, j.State)
	// The owner is cleared by the write after the final state's.
	done := waitStore(t, front, j.ID, func(j *Job) bool { return j.State == StateSucceeded && j.Owner == "" }, "job never succeeded, or kept its owner")
	assert.Equal(t, want, mem.dump())
	assert.True(t, logHas(done, "coordinated by b"), "%v", done.Log)
	assert.False(t, logHas(done, "coordinated by a"), "%v", done.Log)
	assert.EqualValues(t, 60, done.Progress.SamplesWritten)
}

// TestTakeoverAfterCoordinatorDies: a dies (it can no longer write) in the
// middle of batch 1; b, the ring's new choice, waits for a's lease to
// expire, then resumes from the checkpoint: every sample once, originals
// deleted, nothing deleted unverified.
func TestTakeoverAfterCoordinatorDies(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	be := &blockingBackend{memBackend: mem, entered: make(chan struct{}), release: make(chan struct{})}
	shared := objstore.NewInMemBucket()
	aBkt := &deadBucket{Bucket: shared}
	rv := &ringView{owner: map[string]string{"a": "a", "b": "a"}}
	front, _ := startNode(t, shared, be, "", nil)
	startNode(t, aBkt, be, "a", rv)
	startNode(t, shared, be, "b", rv)

	j := submit(t, front, spec(ModeExecute, true))
	<-be.entered // a is in the middle of batch 1
	aBkt.dead.Store(true)
	killed := time.Now()
	rv.set("b", "b")
	rv.set("a", "b")
	cp, err := front.GetJob(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, "a", cp.Owner)
	assert.Equal(t, []bool{true, false, false}, cp.Done)

	done := waitStore(t, front, j.ID, inState(StateSucceeded), "b never finished the job")
	close(be.release)
	assert.GreaterOrEqual(t, time.Since(killed), coordConfig(t).LeaseTTL/2, "b did not wait for a's lease")
	assert.True(t, logHas(done, "coordinated by b"), "%v", done.Log)
	assert.Equal(t, want, mem.dump(), "every sample once under its new labels, originals deleted")
	assert.Equal(t, []bool{true, true, true}, done.Done)
	assert.EqualValues(t, 6, done.Progress.SeriesDone)
	assert.EqualValues(t, 6, done.Progress.SeriesDeleted)
}

// gatedWrites holds each Write whose number (from 1) has a gate until the
// test opens it (or the Write's ctx ends), and tells the test when it
// arrives.
type gatedWrites struct {
	*memBackend
	n     atomic.Int64
	gates map[int64]gate
}

type gate struct{ arrived, open chan struct{} }

func newGate() gate { return gate{arrived: make(chan struct{}), open: make(chan struct{})} }

func (b *gatedWrites) Write(ctx context.Context, s []Series) error {
	if g, ok := b.gates[b.n.Add(1)]; ok {
		close(g.arrived)
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.memBackend.Write(ctx, s)
}

// TestTakeoverClaimsTheRecordAsItIsNow: b's scan lists the job before a
// checkpoints batch 0, then stalls (a long list, a slow store) while a runs
// batch 0, dies in batch 1 and its lease expires. When b goes on, the
// record it listed says the job is queued (or a's, without progress) and
// its lease is long free: b must claim from the record as it is now, and
// resume after batch 0, not write the listed one back and start over.
func TestTakeoverClaimsTheRecordAsItIsNow(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	be := &gatedWrites{memBackend: mem, gates: map[int64]gate{1: newGate(), 2: newGate()}}
	shared := objstore.NewInMemBucket()
	aBkt := &deadBucket{Bucket: shared}
	rv := &ringView{owner: map[string]string{"a": "a", "b": "a"}}
	stalled, resume := make(chan struct{}), make(chan struct{})
	var stall, unstall sync.Once
	front, _ := startNode(t, shared, be, "", nil)
	startNode(t, aBkt, be, "a", rv)
	startNodeOwner(t, shared, be, "b", func(id string) (string, bool) {
		stall.Do(func() { close(stalled); <-resume }) // the first job b's scan listed
		return rv.of("b")(id)
	})
	t.Cleanup(func() { unstall.Do(func() { close(resume) }) }) // before b's stop

	j := submit(t, front, spec(ModeExecute, true))
	<-stalled
	close(be.gates[1].open) // batch 0
	<-be.gates[2].arrived   // a is in the middle of batch 1
	aBkt.dead.Store(true)
	rv.set("b", "b")
	rv.set("a", "b")
	cp, err := front.GetJob(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, "a", cp.Owner)
	require.Equal(t, []bool{true, false, false}, cp.Done)
	require.Eventually(t, func() bool { return time.Since(cp.LeaseRenewed) > coordConfig(t).LeaseTTL }, 10*time.Second, 10*time.Millisecond)
	unstall.Do(func() { close(resume) })

	done := waitStore(t, front, j.ID, inState(StateSucceeded), "b never finished the job")
	close(be.gates[2].open)
	assert.True(t, logHas(done, "coordinated by b (from its checkpoint: 1 of 3 batches done)"), "%v", done.Log)
	assert.Equal(t, want, mem.dump(), "every sample once under its new labels, originals deleted")
	assert.Equal(t, []bool{true, true, true}, done.Done)
	assert.EqualValues(t, 6, done.Progress.SeriesDone)
	assert.EqualValues(t, 6, done.Progress.SeriesDeleted)
}

// TestLiveOwnerKeepsJobWhileRingSettles: b believes it coordinates, but a
// still runs the job and renews its lease, so b waits; when a's ring agrees,
// a releases and b takes over at once.
func TestLiveOwnerKeepsJobWhileRingSettles(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	be := &blockingBackend{memBackend: mem, entered: make(chan struct{}), release: make(chan struct{})}
	bkt := objstore.NewInMemBucket()
	rv := &ringView{owner: map[string]string{"a": "a", "b": "a"}}
	front, _ := startNode(t, bkt, be, "", nil)
	startNode(t, bkt, be, "a", rv)
	b, _ := startNode(t, bkt, be, "b", rv)

	j := submit(t, front, spec(ModeExecute, true))
	<-be.entered
	rv.set("b", "b") // b's view changed first
	first, err := front.GetJob(context.Background(), j.ID)
	require.NoError(t, err)
	// Several lease lifetimes: a renews, b never claims.
	renewed := waitStore(t, front, j.ID, func(j *Job) bool {
		return j.LeaseRenewed.After(first.LeaseRenewed.Add(2 * coordConfig(t).LeaseTTL))
	}, "a stopped renewing its lease")
	assert.Equal(t, "a", renewed.Owner)
	b.mu.Lock()
	assert.Empty(t, b.cancels, "b runs a job a holds")
	b.mu.Unlock()

	rv.set("a", "b")
	done := waitStore(t, front, j.ID, inState(StateSucceeded), "b never finished the job")
	close(be.release)
	assert.True(t, logHas(done, "released by a"), "%v", done.Log)
	assert.True(t, logHas(done, "coordinated by b"), "%v", done.Log)
	assert.Equal(t, want, mem.dump())
}

// TestStoreCancelAndResume: the API's requests reach the coordinator
// through the control object.
func TestStoreCancelAndResume(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	be := &blockingBackend{memBackend: mem, entered: make(chan struct{}), release: make(chan struct{})}
	bkt := objstore.NewInMemBucket()
	rv := &ringView{owner: map[string]string{"a": "a"}}
	front, _ := startNode(t, bkt, be, "", nil)
	startNode(t, bkt, be, "a", rv)

	j := submit(t, front, spec(ModeExecute, true))
	<-be.entered
	c, err := front.CancelJob(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCancelled, c.State, "the answer waits for the coordinator")
	assert.Empty(t, c.PendingControl)
	cancelled := waitStore(t, front, j.ID, func(j *Job) bool { return j.State == StateCancelled && j.Owner == "" }, "never cancelled")
	assert.Empty(t, cancelled.PendingControl)
	_, err = front.CancelJob(context.Background(), j.ID)
	var conflict *ConflictError
	require.ErrorAs(t, err, &conflict)

	close(be.release)
	_, err = front.ResumeJob(context.Background(), j.ID)
	require.NoError(t, err)
	waitStore(t, front, j.ID, inState(StateSucceeded), "never resumed")
	assert.Equal(t, want, mem.dump())
	_, err = front.GetJob(context.Background(), "20261205T030009-dddddddd")
	require.ErrorIs(t, err, ErrNotFound)
}

// TestStoreRequestWithoutCoordinator: with no coordinator to apply it, a
// request is answered pending after two scans.
func TestStoreRequestWithoutCoordinator(t *testing.T) {
	mem := newMem()
	fill(mem, 2)
	front, _ := startNode(t, objstore.NewInMemBucket(), mem, "", nil)
	j := submit(t, front, spec(ModeExecute, false))
	c, err := front.CancelJob(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, StateQueued, c.State)
	assert.Equal(t, ctrlCancel, c.PendingControl)
	got, err := front.GetJob(context.Background(), j.ID)
	require.NoError(t, err)
	assert.Equal(t, ctrlCancel, got.PendingControl)
}

// blockingReads blocks the at-th Read until release (or its ctx ends).
type blockingReads struct {
	*memBackend
	at      int
	entered chan struct{}
	release chan struct{}
	n       atomic.Int64
}

func (b *blockingReads) Read(ctx context.Context, ls []labels.Labels, start, end int64) ([]Series, error) {
	if b.n.Add(1) == int64(b.at) {
		close(b.entered)
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.memBackend.Read(ctx, ls, start, end)
}

// TestOpenMetricsOutputSurvivesTakeover: with a store, an openmetrics
// job's batch files go to the bucket, so when its coordinator dies in the
// middle of batch 1 and another ingester finishes the job, the output the
// front end (a distributor) serves is whole: every sample once.
func TestOpenMetricsOutputSurvivesTakeover(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	before := mem.dump()
	// The plan reads 3 batches of 2 series (one slice each), batch 0 the
	// 4th read: block batch 1's.
	be := &blockingReads{memBackend: mem, at: 5, entered: make(chan struct{}), release: make(chan struct{})}
	shared := objstore.NewInMemBucket()
	aBkt := &deadBucket{Bucket: shared}
	rv := &ringView{owner: map[string]string{"a": "a", "b": "a"}}
	front, _ := startNode(t, shared, be, "", nil)
	startNode(t, aBkt, be, "a", rv)
	startNode(t, shared, be, "b", rv)
	mux := http.NewServeMux()
	front.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	s := spec(ModeOpenMetrics, false)
	s.Candidate = renameOnly
	j := submit(t, front, s)
	<-be.entered
	aBkt.dead.Store(true)
	rv.set("b", "b")
	rv.set("a", "b")
	done := waitStore(t, front, j.ID, inState(StateSucceeded), "b never finished the job")
	close(be.release)
	assert.True(t, logHas(done, "coordinated by b"), "%v", done.Log)
	assert.Equal(t, before, mem.dump(), "an openmetrics job changed the backend")

	out := getOM(t, srv.URL, j.ID)
	require.True(t, strings.HasSuffix(out, "# EOF\n"))
	lines := strings.Split(strings.TrimSuffix(out, "# EOF\n"), "\n")
	lines = lines[:len(lines)-1] // the last newline
	require.Len(t, lines, 60, "every sample once")
	require.Len(t, want, 6)
	for k := range 6 {
		inst := fmt.Sprintf("i%d", k)
		assert.Equal(t, 10, strings.Count(out, `new_metric{instance="`+inst+`",`), inst)
	}
}
