package retro

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// candidate renames old_metric, normalises ids in path and drops debug_metric.
const candidate = `rules:
- name: rename
  relabel_configs:
  - source_labels: [__name__]
    regex: old_metric
    target_label: __name__
    replacement: new_metric
- name: ids
  action: rewrite
  labels:
    normalize:
    - labels: [path]
      builtin: [number]
- name: no-debug
  relabel_configs:
  - source_labels: [__name__]
    regex: debug_metric
    action: drop
`

// renameOnly renames old_metric to new_metric and changes nothing else.
const renameOnly = "rules:\n- name: rename\n  relabel_configs:\n  - source_labels: [__name__]\n    regex: old_metric\n    target_label: __name__\n    replacement: new_metric\n"

var (
	t0  = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rng = [2]time.Time{t0, t0.Add(time.Hour)}
)

// fill adds n series old_metric{instance="i<k>",path="/users/<id>"} with 10
// samples each and returns what they must become.
func fill(m *memBackend, n int) map[string][]Sample {
	want := map[string][]Sample{}
	for k := 0; k < n; k++ {
		var smp []Sample
		for i := 0; i < 10; i++ {
			smp = append(smp, Sample{T: t0.Add(time.Duration(i) * time.Minute).UnixMilli(), V: float64(k*100 + i)})
		}
		inst := fmt.Sprintf("i%d", k)
		m.add(labels.FromStrings("__name__", "old_metric", "instance", inst, "path", fmt.Sprintf("/users/%d", 1000+k)), smp...)
		want[labels.FromStrings("__name__", "new_metric", "instance", inst, "path", "/users/:id").String()] = smp
	}
	return want
}

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Directory = t.TempDir()
	cfg.BatchSeries = 2
	cfg.VerifyTimeout = 200 * time.Millisecond
	return cfg
}

// startManager runs a Manager on be until the test ends (or stop is called).
func startManager(t *testing.T, cfg Config, be Backend) (m *Manager, stop func()) {
	t.Helper()
	m, err := NewManager(ManagerDeps{Config: cfg, Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"},
		NewBackend: func(HTTPBackendConfig) (Backend, error) { return be, nil }})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	return m, stop
}

func spec(mode string, del bool) Spec {
	return Spec{Candidate: candidate, Selector: `{__name__=~".+"}`, Start: rng[0], End: rng[1], Mode: mode, DeleteOriginals: del}
}

func wait(t *testing.T, m *Manager, id string, states ...string) *Job {
	t.Helper()
	var j *Job
	require.Eventually(t, func() bool {
		var err error
		j, err = m.Get(id)
		require.NoError(t, err)
		for _, s := range states {
			if j.State == s {
				return true
			}
		}
		return false
	}, 20*time.Second, 5*time.Millisecond, "job never reached %v", states)
	return j
}

func submit(t *testing.T, m *Manager, s Spec) *Job {
	t.Helper()
	j, err := m.Submit(context.Background(), s)
	require.NoError(t, err)
	return j
}

func TestDryRunCounts(t *testing.T) {
	be := newMem()
	fill(be, 5)
	be.add(labels.FromStrings("__name__", "debug_metric", "x", "1"), Sample{T: t0.UnixMilli(), V: 1}, Sample{T: t0.Add(time.Minute).UnixMilli(), V: 2})
	be.add(labels.FromStrings("__name__", "kept_metric"), Sample{T: t0.UnixMilli(), V: 1})
	be.add(labels.FromStrings("__name__", "kept_metric", "path", "/a/7"), Sample{T: t0.Add(-time.Hour).UnixMilli(), V: 1}) // outside the range
	// Two series that become one.
	be.add(labels.FromStrings("__name__", "m2", "path", "/a/1"), Sample{T: t0.UnixMilli(), V: 1})
	be.add(labels.FromStrings("__name__", "m2", "path", "/a/2"), Sample{T: t0.UnixMilli(), V: 2})
	before := be.dump()
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec("", false)).ID, StateSucceeded)
	dr := j.DryRun
	assert.Equal(t, DryRun{SeriesMatched: 9, SeriesUnchanged: 1, SeriesAffected: 8, SeriesRenamed: 5, SeriesRelabelled: 7, SeriesDropped: 1,
		SeriesMerged: 2, TargetSeries: 6, SamplesAffected: 54, SamplesRewritten: 52, SamplesDropped: 2}, DryRun{
		SeriesMatched: dr.SeriesMatched, SeriesUnchanged: dr.SeriesUnchanged, SeriesAffected: dr.SeriesAffected, SeriesRenamed: dr.SeriesRenamed,
		SeriesRelabelled: dr.SeriesRelabelled, SeriesDropped: dr.SeriesDropped, SeriesMerged: dr.SeriesMerged, TargetSeries: dr.TargetSeries,
		SamplesAffected: dr.SamplesAffected, SamplesRewritten: dr.SamplesRewritten, SamplesDropped: dr.SamplesDropped})
	require.Len(t, dr.Merges, 1)
	assert.Equal(t, map[string]string{"__name__": "m2", "path": "/a/:id"}, dr.Merges[0].Target)
	assert.Len(t, dr.Merges[0].Sources, 2)
	assert.Len(t, dr.Examples, 8)
	assert.Equal(t, before, be.dump(), "a dry run changed the backend")

	// The same plan cannot execute: it would merge.
	j = wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StateFailed)
	assert.Contains(t, j.Error, "merge")
	assert.Equal(t, before, be.dump(), "a refused job changed the backend")
}

func TestEstimate(t *testing.T) {
	assert.InDelta(t, 50.0, Throttles{MaxSeriesPerSecond: 10, MaxSamplesPerSecond: 1000}.estimate(500, 20000), 1e-9)
	assert.InDelta(t, 20.0, Throttles{MaxSeriesPerSecond: 100, MaxSamplesPerSecond: 1000}.estimate(500, 20000), 1e-9)
	assert.Zero(t, Throttles{}.estimate(500, 20000))
}

func TestExecuteMovesEverySample(t *testing.T) {
	be := newMem()
	want := fill(be, 5)
	be.add(labels.FromStrings("__name__", "debug_metric"), Sample{T: t0.UnixMilli(), V: 1})
	be.add(labels.FromStrings("__name__", "kept_metric"), Sample{T: t0.UnixMilli(), V: 1})
	want[labels.FromStrings("__name__", "kept_metric").String()] = []Sample{{T: t0.UnixMilli(), V: 1}}
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StateSucceeded, StatePaused, StateFailed)
	require.Equal(t, StateSucceeded, j.State, j.Error)
	assert.Equal(t, want, be.dump())
	assert.EqualValues(t, 6, j.Progress.SeriesDone)
	assert.EqualValues(t, 50, j.Progress.SamplesWritten)
	assert.EqualValues(t, 6, j.Progress.SeriesDeleted)
	assert.Equal(t, 3, j.Progress.BatchesDone)
	assert.Equal(t, []bool{true, true, true}, j.Done)

	// Re-running it finds nothing to do.
	j = wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StateSucceeded)
	assert.Zero(t, j.DryRun.SeriesAffected)
	assert.Zero(t, j.Progress.BatchesTotal)
	assert.Equal(t, want, be.dump())
}

func TestExecuteWithoutDeleteKeepsOriginals(t *testing.T) {
	be := newMem()
	want := fill(be, 3)
	for k, v := range be.dump() {
		want[k] = v
	}
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, false)).ID, StateSucceeded)
	assert.Equal(t, want, be.dump())
	assert.Zero(t, j.Progress.SeriesDeleted)
	assert.Zero(t, be.deleteCalls)
}

func TestFailingWritePausesAndResumes(t *testing.T) {
	be := newMem()
	want := fill(be, 6)
	be.failWriteAfter = 1
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StatePaused)
	assert.Contains(t, j.Error, "503")
	assert.Equal(t, []bool{true, false, false}, j.Done)
	assert.Len(t, be.dump(), 6, "originals of unfinished batches must stay: 2 copied, 4 originals")
	_, err := m.Resume(j.ID) // still failing
	require.NoError(t, err)
	wait(t, m, j.ID, StatePaused)

	be.mu.Lock()
	be.failWriteAfter = -1
	be.mu.Unlock()
	_, err = m.Resume(j.ID)
	require.NoError(t, err)
	j = wait(t, m, j.ID, StateSucceeded)
	assert.Equal(t, want, be.dump())
	assert.EqualValues(t, 6, j.Progress.SeriesDone)
	assert.EqualValues(t, 60, j.Progress.SamplesWritten)
}

func TestUnverifiedCopyIsNeverDeleted(t *testing.T) {
	be := newMem()
	fill(be, 2)
	before := be.dump()
	be.lostWrites = true
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StatePaused)
	assert.Contains(t, j.Error, "copy not verified")
	assert.Contains(t, j.Error, "originals kept")
	assert.Zero(t, be.deleteCalls)
	assert.Equal(t, before, be.dump())
}

func TestFailingDeleteResumesWithoutDuplicates(t *testing.T) {
	be := newMem()
	want := fill(be, 4)
	be.failDelete = errors.New("delete series: backend answered 500")
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StatePaused)
	assert.Contains(t, j.Error, "500")
	be.mu.Lock()
	be.failDelete = nil
	be.mu.Unlock()
	_, err := m.Resume(j.ID)
	require.NoError(t, err)
	wait(t, m, j.ID, StateSucceeded)
	assert.Equal(t, want, be.dump())
}

// blockingBackend holds the second Write until release is closed or the
// call's context ends.
type blockingBackend struct {
	*memBackend
	entered chan struct{}
	release chan struct{}
	n       int
}

func (b *blockingBackend) Write(ctx context.Context, s []Series) error {
	b.mu.Lock()
	b.n++
	n := b.n
	b.mu.Unlock()
	if n == 2 {
		close(b.entered)
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.memBackend.Write(ctx, s)
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	be := &blockingBackend{memBackend: mem, entered: make(chan struct{}), release: make(chan struct{})}
	cfg := testConfig(t)
	m, stop := startManager(t, cfg, be)
	j := submit(t, m, spec(ModeExecute, true))
	<-be.entered
	stop() // the process stops in the middle of batch 1
	stored, err := dirStore{dir: cfg.Directory}.list(context.Background())
	require.NoError(t, err)
	require.Len(t, stored, 1)
	assert.Equal(t, StateRunning, stored[0].State)
	assert.Equal(t, []bool{true, false, false}, stored[0].Done)

	close(be.release)
	m2, _ := startManager(t, cfg, be)
	done := wait(t, m2, j.ID, StateSucceeded)
	assert.Equal(t, want, mem.dump())
	assert.EqualValues(t, 6, done.Progress.SeriesDone)
	assert.EqualValues(t, 60, done.Progress.SamplesWritten)
	assert.Equal(t, 4, be.n, "batch 0 was written again") // batch 0, the interrupted batch 1, then batches 1 and 2
}

func TestCancel(t *testing.T) {
	mem := newMem()
	want := fill(mem, 6)
	be := &blockingBackend{memBackend: mem, entered: make(chan struct{}), release: make(chan struct{})}
	m, _ := startManager(t, testConfig(t), be)
	j := submit(t, m, spec(ModeExecute, true))
	<-be.entered
	c, err := m.Cancel(j.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCancelled, c.State)
	_, err = m.Cancel(j.ID)
	var conflict *ConflictError
	require.ErrorAs(t, err, &conflict)
	close(be.release)
	require.Eventually(t, func() bool {
		_, err := m.Resume(j.ID)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	wait(t, m, j.ID, StateSucceeded)
	assert.Equal(t, want, mem.dump())
}

func TestSubmitRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		spec    func(s *Spec)
		cfg     func(c *Config)
		be      func(b *memBackend)
		wantErr string
	}{
		"bad selector":      {spec: func(s *Spec) { s.Selector = `{__name__=~"(" }` }, wantErr: "selector"},
		"no selector":       {spec: func(s *Spec) { s.Selector = "" }, wantErr: "selector is required"},
		"empty range":       {spec: func(s *Spec) { s.End = s.Start }, wantErr: "range: end"},
		"future":            {spec: func(s *Spec) { s.End = time.Now().Add(time.Hour) }, wantErr: "in the future"},
		"no start":          {spec: func(s *Spec) { s.Start = time.Time{} }, wantErr: "start and end are required"},
		"bad mode":          {spec: func(s *Spec) { s.Mode = "now" }, wantErr: "mode"},
		"bad candidate":     {spec: func(s *Spec) { s.Candidate = "rules:\n- name: x\n  action: explode\n" }, wantErr: "candidate"},
		"unknown rule":      {spec: func(s *Spec) { s.Rule = "nope" }, wantErr: `rule "nope"`},
		"no rules":          {spec: func(s *Spec) { s.Candidate = "" }, wantErr: "candidate is required"},
		"negative throttle": {spec: func(s *Spec) { s.Throttles.MaxSeriesPerSecond = -1 }, wantErr: "throttles"},
		"deletes disabled": {spec: func(s *Spec) { s.Mode, s.DeleteOriginals = ModeExecute, true },
			cfg: func(c *Config) { c.DisableDelete = true }, wantErr: "deletes are disabled"},
		"admin API off": {spec: func(s *Spec) { s.Mode, s.DeleteOriginals = ModeExecute, true },
			be: func(b *memBackend) { b.adminOff = true }, wantErr: "admin API is disabled"},
		"confirm": {spec: func(s *Spec) { s.Mode = ModeExecute }, cfg: func(c *Config) { c.ConfirmAboveSeries = 2 }, wantErr: "confirm"},
	} {
		t.Run(name, func(t *testing.T) {
			be := newMem()
			fill(be, 3)
			before := be.dump()
			cfg := testConfig(t)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if tc.be != nil {
				tc.be(be)
			}
			m, _ := startManager(t, cfg, be)
			s := spec("", false)
			tc.spec(&s)
			_, err := m.Submit(context.Background(), s)
			var bad *BadRequestError
			require.ErrorAs(t, err, &bad)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Empty(t, m.List())
			assert.Equal(t, before, be.dump())
		})
	}
}

func TestConfirmLetsABigJobRun(t *testing.T) {
	be := newMem()
	want := fill(be, 3)
	cfg := testConfig(t)
	cfg.ConfirmAboveSeries = 2
	m, _ := startManager(t, cfg, be)
	s := spec(ModeExecute, true)
	s.Confirm = true
	wait(t, m, submit(t, m, s).ID, StateSucceeded)
	assert.Equal(t, want, be.dump())
}

func TestUnsupportedBackend(t *testing.T) {
	_, err := NewHTTPBackend(HTTPBackendConfig{Kind: "cortex", URL: "http://127.0.0.1:1"}, nil)
	require.ErrorIs(t, err, ErrUnsupported)
	assert.Contains(t, err.Error(), "backend.kind")
	_, err = NewHTTPBackend(HTTPBackendConfig{Kind: KindPrometheus, URL: "ftp://x"}, nil)
	assert.ErrorContains(t, err, "backend.url")
	_, err = NewHTTPBackend(HTTPBackendConfig{Kind: KindMimir, URL: "http://127.0.0.1:1", WriteURL: "/api/v1/push"}, nil)
	assert.ErrorContains(t, err, "backend.write_url")

	// Mimir and Thanos are read through the query API; what they cannot
	// do is refused before any request (the checks need no answer).
	for _, kind := range []string{KindMimir, KindThanos} {
		be, err := NewHTTPBackend(HTTPBackendConfig{Kind: kind, URL: "http://127.0.0.1:1"}, nil)
		require.NoError(t, err, kind)
		require.ErrorIs(t, be.CheckDelete(context.Background()), ErrUnsupported, kind)
		err = be.CheckWrite(context.Background(), 0)
		require.ErrorIs(t, err, ErrUnsupported, kind)
		assert.ErrorContains(t, err, "backend.write_url")
		require.ErrorIs(t, be.Delete(context.Background(), []labels.Labels{labels.FromStrings("__name__", "m")}, 0, 1), ErrUnsupported)
		be.Close()
	}
}

func TestNothingToDoFinishesAtOnce(t *testing.T) {
	be := newMem()
	fill(be, 3)
	m, _ := startManager(t, testConfig(t), be)
	s := spec(ModeExecute, true)
	s.Selector = `{__name__="absent"}`
	j := wait(t, m, submit(t, m, s).ID, StateSucceeded)
	assert.Zero(t, j.DryRun.SeriesMatched)
	assert.Zero(t, j.Progress.SeriesDone)
}

func TestThrottledRunStillCompletes(t *testing.T) {
	be := newMem()
	want := fill(be, 4)
	m, _ := startManager(t, testConfig(t), be)
	s := spec(ModeExecute, true)
	s.Throttles = Throttles{MaxSeriesPerSecond: 1000, MaxSamplesPerSecond: 15, MaxConcurrency: 2}
	j := wait(t, m, submit(t, m, s).ID, StateSucceeded)
	assert.Equal(t, want, be.dump())
	assert.InDelta(t, 40.0/15, j.DryRun.EstimatedSeconds, 1e-9)
}

// TestMetrics: the counters add up to the jobs' progress, and the jobs
// gauge counts jobs by state.
func TestMetrics(t *testing.T) {
	be := newMem()
	fill(be, 4)
	reg := prometheus.NewPedanticRegistry()
	m, err := NewManager(ManagerDeps{Config: testConfig(t), Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"},
		NewBackend: func(HTTPBackendConfig) (Backend, error) { return be, nil }, Registerer: reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StateSucceeded)
	wait(t, m, submit(t, m, spec(ModeDryRun, false)).ID, StateSucceeded)
	p := j.Progress
	require.NotZero(t, p.SamplesRead)
	assert.Equal(t, float64(p.SamplesRead), testutil.ToFloat64(m.metrics.samples.WithLabelValues("read")))
	assert.Equal(t, float64(p.SamplesWritten), testutil.ToFloat64(m.metrics.samples.WithLabelValues("written")))
	assert.Equal(t, float64(p.SeriesDone), testutil.ToFloat64(m.metrics.series.WithLabelValues("done")))
	assert.Equal(t, float64(p.SeriesDeleted), testutil.ToFloat64(m.metrics.series.WithLabelValues("deleted")))
	assert.Equal(t, float64(p.BatchesDone), testutil.ToFloat64(m.metrics.batches.WithLabelValues("done")))
	assert.Zero(t, testutil.ToFloat64(m.metrics.batches.WithLabelValues("failed")))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP promgov_retrospective_jobs Retrospective jobs this node holds, by state.
# TYPE promgov_retrospective_jobs gauge
promgov_retrospective_jobs{state="cancelled"} 0
promgov_retrospective_jobs{state="failed"} 0
promgov_retrospective_jobs{state="paused"} 0
promgov_retrospective_jobs{state="planning"} 0
promgov_retrospective_jobs{state="queued"} 0
promgov_retrospective_jobs{state="running"} 0
promgov_retrospective_jobs{state="succeeded"} 2
`), "promgov_retrospective_jobs"))
}

func TestSliceRange(t *testing.T) {
	for name, tc := range map[string]struct {
		start, end, step int64
		want             []timeSlice
	}{
		"one slice":      {0, 99, 100, []timeSlice{{0, 99}}},
		"exact slices":   {0, 199, 100, []timeSlice{{0, 99}, {100, 199}}},
		"shorter last":   {0, 250, 100, []timeSlice{{0, 99}, {100, 199}, {200, 250}}},
		"single instant": {5, 5, 100, []timeSlice{{5, 5}}},
		"one past":       {0, 100, 100, []timeSlice{{0, 99}, {100, 100}}},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, sliceRange(tc.start, tc.end, tc.step))
		})
	}
}

// TestSlicedBatches: with 3-minute slices a batch holds at most 2 series ×
// 3 samples at once, a write failing in the middle of a batch's slices
// pauses the job with nothing deleted, and the resumed job ends identical
// to an unsliced one.
func TestSlicedBatches(t *testing.T) {
	be := newMem()
	want := fill(be, 4)
	be.failWriteAfter = 5 // batch 0's 4 slices with samples, then 1 of batch 1's
	cfg := testConfig(t)
	cfg.Slice = 3 * time.Minute
	m, _ := startManager(t, cfg, be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StatePaused)
	assert.Equal(t, []bool{true, false}, j.Done)
	// Batch 0 moved; batch 1 has the first slice of its copy, and its
	// originals whole.
	d := be.dump()
	for k := 0; k < 4; k++ {
		orig := labels.FromStrings("__name__", "old_metric", "instance", fmt.Sprintf("i%d", k), "path", fmt.Sprintf("/users/%d", 1000+k)).String()
		if k < 2 {
			assert.NotContains(t, d, orig)
		} else {
			assert.Len(t, d[orig], 10, "original of an unfinished batch touched")
		}
	}
	be.mu.Lock()
	be.failWriteAfter = -1
	be.mu.Unlock()
	_, err := m.Resume(j.ID)
	require.NoError(t, err)
	j = wait(t, m, j.ID, StateSucceeded)
	assert.Equal(t, want, be.dump())
	assert.EqualValues(t, 40, j.Progress.SamplesWritten)
	assert.EqualValues(t, 4, j.Progress.SeriesDeleted)
	assert.LessOrEqual(t, be.maxRead, 2*3, "a read held more than batch_series × one slice")
}

func TestAppendOMSeries(t *testing.T) {
	for name, tc := range map[string]struct {
		s    Series
		want string
	}{
		"labels and times": {Series{Labels: labels.FromStrings("__name__", "m_total", "a", `x"y`, "b", "2"), Samples: []Sample{{1733300000123, 1.5}, {1733300030005, 2}}},
			"m_total{a=\"x\\\"y\",b=\"2\"} 1.5 1733300000.123\nm_total{a=\"x\\\"y\",b=\"2\"} 2 1733300030.005\n"},
		"no labels":      {Series{Labels: labels.FromStrings("__name__", "up"), Samples: []Sample{{1000, 1}}}, "up 1 1.000\n"},
		"special values": {Series{Labels: labels.FromStrings("__name__", "g"), Samples: []Sample{{1, math.NaN()}, {2, math.Inf(1)}, {3, math.Inf(-1)}}}, "g NaN 0.001\ng +Inf 0.002\ng -Inf 0.003\n"},
		"before 1970":    {Series{Labels: labels.FromStrings("__name__", "g"), Samples: []Sample{{-1500, 0}}}, "g 0 -1.500\n"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, string(appendOMSeries(nil, tc.s)))
		})
	}
}

// TestOpenMetricsJob: an openmetrics job writes every rewritten series to
// files, changes nothing in the backend, answers the files with # EOF,
// and a batch redone after a failure does not repeat samples.
func TestOpenMetricsJob(t *testing.T) {
	be := newMem()
	fill(be, 4)
	before := be.dump()
	cfg := testConfig(t)
	cfg.Slice = 3 * time.Minute
	m, _ := startManager(t, cfg, be)
	mux := http.NewServeMux()
	m.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	s := spec(ModeOpenMetrics, false)
	s.Candidate = renameOnly
	// The plan reads 2 batches × n slices, batch 0 reads its n, then
	// batch 1 fails at its second slice, after writing its first.
	n := len(sliceRange(s.Start.UnixMilli(), s.End.UnixMilli(), cfg.Slice.Milliseconds()))
	be.failReadAfter = 2*n + n + 1
	j := wait(t, m, submit(t, m, s).ID, StatePaused)
	assert.Contains(t, j.Error, "read failed")
	files, err := filepath.Glob(filepath.Join(cfg.Directory, j.ID, "openmetrics", "*"))
	require.NoError(t, err)
	assert.Equal(t, []string{"batch-000000.om"}, baseNames(files), "an unfinished batch left its file")
	be.mu.Lock()
	be.failReadAfter = 0
	be.mu.Unlock()
	_, err = m.Resume(j.ID)
	require.NoError(t, err)
	j = wait(t, m, j.ID, StateSucceeded)
	assert.Equal(t, before, be.dump(), "an openmetrics job changed the backend")
	assert.EqualValues(t, 40, j.Progress.SamplesWritten)

	first := getOM(t, srv.URL, j.ID)
	assert.Equal(t, 40+1, strings.Count(first, "\n"))
	assert.True(t, strings.HasSuffix(first, "# EOF\n"))
	assert.Contains(t, first, `new_metric{instance="i0",path="/users/1000"} 0 1796119200.000`+"\n")

	code, body := getOMStatus(t, srv.URL, "20261201T100000-00000000")
	assert.Equal(t, http.StatusNotFound, code, body)
	dry := wait(t, m, submit(t, m, spec(ModeDryRun, false)).ID, StateSucceeded)
	code, body = getOMStatus(t, srv.URL, dry.ID)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "only a succeeded openmetrics job")

	_, err = m.Submit(context.Background(), Spec{Candidate: s.Candidate, Selector: s.Selector, Start: s.Start, End: s.End, Mode: ModeOpenMetrics, DeleteOriginals: true})
	var bad *BadRequestError
	require.ErrorAs(t, err, &bad)
	assert.ErrorContains(t, err, "delete_originals: an openmetrics job only writes files")
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func getOMStatus(t *testing.T, base, id string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + PathOpenMetrics + id)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func getOM(t *testing.T, base, id string) string {
	t.Helper()
	code, body := getOMStatus(t, base, id)
	require.Equal(t, http.StatusOK, code, body)
	return body
}

// TestPlanSavedWithoutDryRun: a process stopped between saving a job's plan
// and recording its dry run leaves a plan and no dry run; the job plans
// again when it resumes instead of crashing the process.
func TestPlanSavedWithoutDryRun(t *testing.T) {
	be := newMem()
	want := fill(be, 4)
	cfg := testConfig(t)
	m, err := NewManager(ManagerDeps{Config: cfg, Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"},
		NewBackend: func(HTTPBackendConfig) (Backend, error) { return be, nil }})
	require.NoError(t, err)
	j := submit(t, m, spec(ModeExecute, true)) // Run has not started: queued
	require.NoError(t, m.store.savePlan(context.Background(), j.ID, nil))

	m2, _ := startManager(t, cfg, be)
	j = wait(t, m2, j.ID, StateSucceeded, StatePaused, StateFailed)
	require.Equal(t, StateSucceeded, j.State, j.Error)
	assert.Equal(t, want, be.dump())
}
