package retro

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrNotFound is a job id that does not exist.
var ErrNotFound = errors.New("job not found")

// ConflictError is an operation the job's state does not allow (HTTP 409).
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// ManagerDeps are what a Manager needs. Backend is required unless every
// job names its own; Rules may be nil (jobs then need a candidate).
type ManagerDeps struct {
	Config  Config
	Backend *HTTPBackendConfig
	Rules   RuleSource
	Logger  *slog.Logger
	// NewBackend builds a job's backend (default: NewHTTPBackend).
	NewBackend func(HTTPBackendConfig) (Backend, error)
	Now        func() time.Time
	// Registerer receives the promgov_retrospective_* metrics; may be nil.
	Registerer prometheus.Registerer
	// Store, when set, keeps the jobs in the governance store's bucket
	// instead of Config.Directory; then only a Manager with Coordination
	// runs them (the ring's choice), others accept and read them.
	Store *BucketStore
	// Coordination makes this Manager a coordinator (ingesters); needs Store.
	Coordination *Coordination
}

// Manager accepts, runs, cancels and resumes jobs in this process. It
// runs them only while Run runs; jobs that were running when the process
// stopped resume when Run starts again. Safe for concurrent use.
type Manager struct {
	d       ManagerDeps
	store   jobStore
	metrics *metrics

	mu      sync.Mutex
	jobs    map[string]*Job
	cancels map[string]context.CancelFunc
	restart map[string]bool // resumed while stopping
	runCtx  context.Context // nil until Run starts
	wg      sync.WaitGroup

	// With a Store (coordinator.go): jobs holds only the jobs this node
	// runs; leases their last renewal; releasing and yielded what to do
	// when they stop.
	leases    map[string]time.Time
	releasing map[string]bool
	yielded   map[string]bool
}

// NewManager validates deps and loads the stored jobs.
func NewManager(d ManagerDeps) (*Manager, error) {
	if err := d.Config.Validate(); err != nil {
		return nil, err
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.NewBackend == nil {
		max := d.Config.MaxSamplesPerWrite
		logger := d.Logger
		d.NewBackend = func(c HTTPBackendConfig) (Backend, error) {
			c.MaxSamplesPerWrite = max
			return NewHTTPBackend(c, logger)
		}
	}
	if d.Coordination != nil && d.Store == nil {
		return nil, errors.New("retrospective: coordination needs the governance store (governance.store)")
	}
	m := &Manager{d: d, store: dirStore{dir: d.Config.Directory}, jobs: map[string]*Job{}, cancels: map[string]context.CancelFunc{}, restart: map[string]bool{},
		leases: map[string]time.Time{}, releasing: map[string]bool{}, yielded: map[string]bool{}}
	if d.Store != nil {
		m.store = d.Store
	} else {
		list, err := m.store.list(context.Background())
		if err != nil {
			return nil, fmt.Errorf("retrospective.directory: %w", err)
		}
		for _, j := range list {
			m.jobs[j.ID] = j
		}
	}
	m.metrics = newMetrics(d.Registerer, m)
	return m, nil
}

// Run starts the jobs that were queued or running and blocks until ctx
// ends; it then stops every job where it is (each resumes from its
// checkpoint on the next start) and waits for them.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.runCtx = ctx
	if m.shared() {
		m.mu.Unlock()
		if m.d.Coordination != nil {
			m.coordinate(ctx)
		}
		<-ctx.Done()
		m.wg.Wait()
		return nil
	}
	for id, j := range m.jobs {
		switch j.State {
		case StateQueued, StatePlanning, StateRunning:
			m.d.Logger.Info("resuming retrospective job", "job", id, "state", j.State)
			j.logf("resuming after a restart from its checkpoint (%d of %d batches done)", j.Progress.BatchesDone, j.Progress.BatchesTotal)
			if err := m.store.save(context.Background(), j); err != nil {
				m.d.Logger.Warn("cannot save a retrospective job", "job", id, "err", err)
			}
			m.startLocked(id)
		}
	}
	m.mu.Unlock()
	t := time.NewTicker(m.d.Config.ScanInterval)
	defer t.Stop()
	for {
		m.collectLocal(ctx)
		select {
		case <-ctx.Done():
			m.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Submit validates spec, resolves its rules and backend, checks what can be
// checked before any work (the admin API for deletes, the out-of-order window,
// confirm) and starts the job. A *BadRequestError names what is wrong.
func (m *Manager) Submit(ctx context.Context, spec Spec) (*Job, error) {
	if err := spec.validate(m.d.Now()); err != nil {
		return nil, err
	}
	if spec.DeleteOriginals && m.d.Config.DisableDelete {
		return nil, badRequest("delete_originals: deletes are disabled on this node (retrospective.disable_delete); run without delete_originals")
	}
	if spec.Backend == nil {
		if m.d.Backend == nil {
			return nil, badRequest("backend is required: this node has no default backend")
		}
		b := *m.d.Backend
		spec.Backend = &b
	}
	if err := spec.Backend.Validate(); err != nil {
		return nil, &BadRequestError{Err: err}
	}
	be, err := m.d.NewBackend(*spec.Backend)
	if err != nil {
		return nil, &BadRequestError{Err: err}
	}
	if c, ok := be.(interface{ Close() }); ok {
		defer c.Close()
	}
	gov, eng, err := resolveRules(ctx, &spec, m.d.Rules)
	if eng != nil {
		_ = eng.Close(ctx) // only the YAML is kept; the job compiles it when it runs
	}
	if err != nil {
		return nil, err
	}
	if spec.Mode == ModeExecute {
		if err := preflight(ctx, be, &spec); err != nil {
			return nil, &BadRequestError{Err: err}
		}
		if !spec.Confirm && m.d.Config.ConfirmAboveSeries > 0 {
			listed, err := be.ListSeries(ctx, spec.Selector, spec.startMs(), spec.endMs())
			if err != nil {
				return nil, err
			}
			if len(listed) > m.d.Config.ConfirmAboveSeries {
				return nil, badRequest("confirm: the selector matches %d stored series, more than %d (retrospective.confirm_above_series): run a dry run, then send confirm: true", len(listed), m.d.Config.ConfirmAboveSeries)
			}
		}
	}
	now := m.d.Now().UTC()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	j := &Job{ID: now.Format("20060102T150405") + "-" + hex.EncodeToString(rnd[:]), Spec: spec, Rules: gov.rules, Aggregations: gov.aggregations, State: StateQueued, Created: now, Updated: now}
	j.logf("submitted: mode=%s selector=%s range=[%s, %s] delete_originals=%t", spec.Mode, spec.Selector, spec.Start.Format(time.RFC3339), spec.End.Format(time.RFC3339), spec.DeleteOriginals)
	if m.shared() {
		// Queued in the store: the ring's choice of coordinator runs it.
		if err := m.store.save(ctx, j); err != nil {
			return nil, err
		}
		return copyJob(j), nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.save(context.Background(), j); err != nil {
		return nil, err
	}
	m.jobs[j.ID] = j
	m.startLocked(j.ID)
	return copyJob(j), nil
}

// preflight refuses what would fail after writing: deletes without the admin
// API, samples older than the backend accepts.
func preflight(ctx context.Context, be Backend, spec *Spec) error {
	if spec.DeleteOriginals {
		if err := be.CheckDelete(ctx); err != nil {
			return fmt.Errorf("delete_originals: %w", err)
		}
	}
	if _, ok := be.(TombstoneCleaner); spec.CleanTombstones && (!ok || be.Kind() != KindPrometheus) {
		return fmt.Errorf("clean_tombstones: %w: only Prometheus keeps tombstones (VictoriaMetrics drops deleted series at its next merge)", ErrUnsupported)
	}
	return be.CheckWrite(ctx, spec.startMs())
}

// startLocked runs job id if Run has started. m.mu is held.
func (m *Manager) startLocked(id string) {
	if m.runCtx == nil || m.runCtx.Err() != nil || m.cancels[id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.runCtx)
	m.cancels[id] = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		m.run(ctx, id)
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.cancels, id)
		m.stoppedLocked(id)
		if m.restart[id] {
			delete(m.restart, id)
			m.startLocked(id)
		}
	}()
}

// List returns every job, oldest first.
func (m *Manager) List() []*Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Job, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, copyJob(j))
	}
	sortJobs(out)
	return out
}

// Get returns one job.
func (m *Manager) Get(id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	return copyJob(j), nil
}

// Cancel stops a job after the step it is in; it keeps its checkpoint and
// can be resumed.
func (m *Manager) Cancel(id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	switch j.State {
	case StateSucceeded, StateFailed, StateCancelled:
		return nil, &ConflictError{Msg: fmt.Sprintf("job %s is %s", id, j.State)}
	}
	j.State = StateCancelled
	j.Updated = m.d.Now().UTC()
	j.logf("cancelled")
	if err := m.store.save(context.Background(), j); err != nil {
		return nil, err
	}
	if c := m.cancels[id]; c != nil {
		c()
	}
	return copyJob(j), nil
}

// Resume restarts a paused or cancelled job from its checkpoint.
func (m *Manager) Resume(id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	if j.State != StatePaused && j.State != StateCancelled {
		return nil, &ConflictError{Msg: fmt.Sprintf("job %s is %s; only paused or cancelled jobs resume", id, j.State)}
	}
	j.State = StateQueued
	j.Error = ""
	j.Updated = m.d.Now().UTC()
	j.logf("resumed")
	if err := m.store.save(context.Background(), j); err != nil {
		return nil, err
	}
	if m.cancels[id] != nil {
		m.restart[id] = true // still stopping: start again when it has stopped
	} else {
		m.startLocked(id)
	}
	return copyJob(j), nil
}

// update changes job id under the lock and saves it (the checkpoint).
func (m *Manager) update(id string, fn func(j *Job)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.jobs[id]
	fn(j)
	j.Updated = m.d.Now().UTC()
	return m.store.save(context.Background(), j)
}

func copyJob(j *Job) *Job {
	c := *j
	c.Done = append([]bool(nil), j.Done...)
	c.Log = append([]string(nil), j.Log...)
	if j.DryRun != nil {
		d := *j.DryRun
		c.DryRun = &d
	}
	return &c
}

func sortJobs(js []*Job) {
	for i := 1; i < len(js); i++ {
		for k := i; k > 0 && js[k].ID < js[k-1].ID; k-- {
			js[k], js[k-1] = js[k-1], js[k]
		}
	}
}
