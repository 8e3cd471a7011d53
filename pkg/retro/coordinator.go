package retro

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Coordination is what a Manager with a Store needs to run jobs: every
// ingester has one, distributors none (they only accept and read jobs).
type Coordination struct {
	// Self is this node's ring name, written as the owner of the jobs it runs.
	Self string
	// Owner returns the ring's choice of coordinator for a job (RingOwner).
	Owner func(id string) (string, bool)
	// Changed returns a channel closed at the next ring change (ring.Ring.Changed);
	// may be nil (then the Manager scans every Config.ScanInterval only).
	Changed func() <-chan struct{}
}

// storeTimeout bounds one job store operation of the coordinator.
const storeTimeout = 30 * time.Second

// shared reports whether the jobs are in the governance store.
func (m *Manager) shared() bool { return m.d.Store != nil }

// coordinate scans the store every Config.ScanInterval and at every ring
// change until ctx ends, then stops the jobs it runs and releases them so
// that their next coordinator need not wait for the lease to expire.
func (m *Manager) coordinate(ctx context.Context) {
	t := time.NewTicker(m.d.Config.ScanInterval)
	defer t.Stop()
	for {
		var changed <-chan struct{}
		if m.d.Coordination.Changed != nil {
			changed = m.d.Coordination.Changed()
		}
		if err := m.scan(ctx); err != nil && ctx.Err() == nil {
			m.d.Logger.Warn("cannot scan the retrospective jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return // the jobs stop with ctx and are released (stoppedLocked)
		case <-t.C:
		case <-changed:
		}
	}
}

// scan applies the ownership rule (decide) to every stored job.
func (m *Manager) scan(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	list, err := m.d.Store.list(sctx)
	if err != nil {
		m.fence()
		return err
	}
	self, ttl := m.d.Coordination.Self, m.d.Config.LeaseTTL
	for _, j := range list {
		owner, ok := m.d.Coordination.Owner(j.ID)
		now := m.d.Now()
		m.mu.Lock()
		running := m.cancels[j.ID] != nil
		m.mu.Unlock()
		if !running && ok && owner == self && collectable(j, m.d.Config.Retention, now) {
			m.remove(sctx, j.ID)
			continue
		}
		if !running && (j.State == StateSucceeded || j.State == StateFailed) {
			continue // ended for good: no request applies
		}
		ctrl, hasCtrl, err := m.d.Store.Control(sctx, j.ID)
		if err != nil {
			return err
		}
		pending := hasCtrl && ctrl.Seq > j.ControlSeq
		switch decide(j, self, owner, ok, running, now, ttl) {
		case renew:
			m.renew(j.ID, now, pending, ctrl)
		case release:
			m.d.Logger.Info("retrospective job moves to another coordinator", "job", j.ID, "coordinator", owner)
			m.stop(j.ID, true)
		case yield:
			m.d.Logger.Warn("retrospective job taken over by another coordinator", "job", j.ID, "owner", j.Owner)
			m.stop(j.ID, false)
		case claim:
			if err := m.takeUp(sctx, j.ID); err != nil {
				return err
			}
		case leave:
			// A request for a job nobody runs (paused, cancelled) is
			// applied by the ring's choice when no live owner holds it.
			if pending && ok && owner == self && leaseFree(j, self, now, ttl) && !running {
				if err := m.takeUp(sctx, j.ID); err != nil {
					return err
				}
			}
		}
	}
	m.fence()
	return nil
}

// takeUp reads job id again and, when this node may still take it up by
// the record as it is now (the ring's choice, its lease free), applies its
// pending request and claims it if it has work. The scan's record is as
// old as the list: with many jobs or a slow store, another node may have
// claimed and checkpointed the job since, and a claim written from the
// listed record would overwrite what that node wrote (its owner, progress
// and checkpoint). Deleted meanwhile: nothing to do.
func (m *Manager) takeUp(ctx context.Context, id string) error {
	j, err := m.d.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ctrl, hasCtrl, err := m.d.Store.Control(ctx, id)
	if err != nil {
		return err
	}
	self := m.d.Coordination.Self
	owner, ok := m.d.Coordination.Owner(id)
	now := m.d.Now()
	if !ok || owner != self || !leaseFree(j, self, now, m.d.Config.LeaseTTL) {
		return nil
	}
	if hasCtrl && ctrl.Seq > j.ControlSeq {
		m.applyControl(ctx, j, ctrl)
	}
	if active(j.State) {
		m.claim(ctx, j, now)
	}
	return nil
}

// claim writes self as j's owner and starts it from its checkpoint.
func (m *Manager) claim(ctx context.Context, j *Job, now time.Time) {
	self := m.d.Coordination.Self
	j.Owner, j.LeaseRenewed = self, now.UTC()
	j.PendingControl = ""
	j.Updated = now.UTC()
	j.logf("coordinated by %s (from its checkpoint: %d of %d batches done)", self, j.Progress.BatchesDone, j.Progress.BatchesTotal)
	if err := m.d.Store.save(ctx, j); err != nil {
		m.d.Logger.Warn("cannot claim a retrospective job", "job", j.ID, "err", err)
		return
	}
	m.d.Logger.Info("coordinating retrospective job", "job", j.ID, "state", j.State)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs[j.ID] = j
	m.leases[j.ID] = now
	m.startLocked(j.ID)
}

// renew extends the lease of a job this node runs, and applies a pending
// cancel.
func (m *Manager) renew(id string, now time.Time, pending bool, ctrl Control) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.jobs[id]
	if j == nil || m.cancels[id] == nil {
		return // ended meanwhile
	}
	j.LeaseRenewed = now.UTC()
	if pending {
		j.ControlSeq = ctrl.Seq
		if ctrl.Request == ctrlCancel {
			j.State = StateCancelled
			j.logf("cancelled")
		}
	}
	j.Updated = now.UTC()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := m.d.Store.save(ctx, j); err != nil {
		m.d.Logger.Warn("cannot renew the lease of a retrospective job", "job", id, "err", err)
		return
	}
	m.leases[id] = now
	if pending && ctrl.Request == ctrlCancel {
		if c := m.cancels[id]; c != nil {
			c()
		}
	}
}

// fence stops the jobs whose lease this node could not renew for half its
// TTL: another node may take them when it expires, and this one must stop
// writing before then.
func (m *Manager) fence() {
	now := m.d.Now()
	m.mu.Lock()
	var late []string
	for id := range m.cancels {
		if last, ok := m.leases[id]; ok && now.Sub(last) > m.d.Config.LeaseTTL/2 {
			late = append(late, id)
		}
	}
	m.mu.Unlock()
	for _, id := range late {
		m.d.Logger.Warn("retrospective job stopped: its lease could not be renewed", "job", id)
		m.stop(id, false)
	}
}

// stop stops a job this node runs; with release it clears the owner once
// the job has stopped, so that the ring's choice takes it at once.
func (m *Manager) stop(id string, release bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if release {
		m.releasing[id] = true
	} else {
		m.yielded[id] = true
	}
	if c := m.cancels[id]; c != nil {
		c()
	}
}

// stopped runs when a job's goroutine has ended (m.mu held): a job in the
// store is forgotten locally, and released when asked.
func (m *Manager) stoppedLocked(id string) {
	if !m.shared() {
		return
	}
	j := m.jobs[id]
	rel, yielded := m.releasing[id], m.yielded[id]
	delete(m.releasing, id)
	delete(m.yielded, id)
	delete(m.leases, id)
	delete(m.jobs, id)
	if j == nil || yielded || m.restart[id] {
		return
	}
	rel = rel || m.runCtx.Err() != nil // shutdown: the next coordinator need not wait
	if rel || !active(j.State) {
		j.Owner, j.LeaseRenewed = "", time.Time{}
		if rel {
			j.logf("released by %s", m.d.Coordination.Self)
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := m.d.Store.save(ctx, j); err != nil {
			m.d.Logger.Warn("cannot release a retrospective job", "job", id, "err", err)
		}
	}
}

// applyControl applies a cancel or resume request to a job nobody runs.
func (m *Manager) applyControl(ctx context.Context, j *Job, c Control) {
	j.ControlSeq = c.Seq
	switch {
	case c.Request == ctrlCancel && j.State != StateSucceeded && j.State != StateFailed && j.State != StateCancelled:
		j.State = StateCancelled
		j.logf("cancelled")
	case c.Request == ctrlResume && (j.State == StatePaused || j.State == StateCancelled):
		j.State, j.Error = StateQueued, ""
		j.logf("resumed")
	}
	j.Updated = m.d.Now().UTC()
	if err := m.d.Store.save(ctx, j); err != nil {
		m.d.Logger.Warn("cannot apply a request to a retrospective job", "job", j.ID, "request", c.Request, "err", err)
	}
}

// storeGet reads a job from the store with its pending request.
func (m *Manager) storeGet(ctx context.Context, id string) (*Job, error) {
	j, err := m.d.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.withControl(ctx, j)
}

// withControl fills j's PendingControl.
func (m *Manager) withControl(ctx context.Context, j *Job) (*Job, error) {
	c, ok, err := m.d.Store.Control(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	if ok && c.Seq > j.ControlSeq {
		j.PendingControl = c.Request
	}
	return j, nil
}

// storeRequest checks that the job's state allows request (409 otherwise,
// as Cancel and Resume) and records it for the coordinator.
func (m *Manager) storeRequest(ctx context.Context, id, request string) (*Job, error) {
	j, err := m.storeGet(ctx, id)
	if err != nil {
		return nil, err
	}
	switch request {
	case ctrlCancel:
		if j.State == StateSucceeded || j.State == StateFailed || j.State == StateCancelled {
			return nil, &ConflictError{Msg: fmt.Sprintf("job %s is %s", id, j.State)}
		}
	case ctrlResume:
		if j.State != StatePaused && j.State != StateCancelled {
			return nil, &ConflictError{Msg: fmt.Sprintf("job %s is %s; only paused or cancelled jobs resume", id, j.State)}
		}
	}
	c, err := m.d.Store.RequestControl(ctx, id, request)
	if err != nil {
		return nil, err
	}
	// The coordinator applies the request at its next scan: wait for it a
	// little (two scans), so that the answer shows the new state as it does
	// without a store; else answer with pending_control.
	wait := time.NewTimer(2*m.d.Config.ScanInterval + time.Second)
	defer wait.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			j.PendingControl = request
			return j, nil
		case <-tick.C:
		}
		now, err := m.storeGet(ctx, id)
		if err != nil {
			return nil, err
		}
		if now.ControlSeq >= c.Seq {
			return now, nil
		}
	}
}

// ListJobs returns every job, oldest first: from the store when there is
// one, else this process's.
func (m *Manager) ListJobs(ctx context.Context) ([]*Job, error) {
	if !m.shared() {
		return m.List(), nil
	}
	list, err := m.d.Store.list(ctx)
	if err != nil {
		return nil, err
	}
	for i, j := range list {
		if list[i], err = m.withControl(ctx, j); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// GetJob returns one job (from the store when there is one).
func (m *Manager) GetJob(ctx context.Context, id string) (*Job, error) {
	if !m.shared() {
		return m.Get(id)
	}
	return m.storeGet(ctx, id)
}

// CancelJob cancels a job: at once without a store, else by a request its
// coordinator applies at its next scan (the answer's pending_control).
func (m *Manager) CancelJob(ctx context.Context, id string) (*Job, error) {
	if !m.shared() {
		return m.Cancel(id)
	}
	return m.storeRequest(ctx, id, ctrlCancel)
}

// ResumeJob resumes a job, as CancelJob.
func (m *Manager) ResumeJob(ctx context.Context, id string) (*Job, error) {
	if !m.shared() {
		return m.Resume(id)
	}
	return m.storeRequest(ctx, id, ctrlResume)
}
