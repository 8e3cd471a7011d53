package retro

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thanos-io/objstore"
)

// Garbage collection of ended jobs. A job that succeeded, failed or was
// cancelled and has not changed for Config.Retention is removed with
// everything it keeps (record, plan, control, openmetrics output); a paused
// job is kept until an operator resumes or cancels it, whatever its age.
// Without a store the node's Manager collects its own jobs; with one, the
// ring's coordinator of each job does, at its scans (removing is
// idempotent, so two nodes that both believe they own a job do no harm).

// collectable reports whether j may be removed at now.
func collectable(j *Job, retention time.Duration, now time.Time) bool {
	if retention <= 0 {
		return false
	}
	switch j.State {
	case StateSucceeded, StateFailed, StateCancelled:
		return now.Sub(j.Updated) > retention
	}
	return false
}

// collectLocal removes this node's collectable jobs (no store).
func (m *Manager) collectLocal(ctx context.Context) {
	now := m.d.Now()
	m.mu.Lock()
	var ids []string
	for id, j := range m.jobs {
		if m.cancels[id] == nil && collectable(j, m.d.Config.Retention, now) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.remove(ctx, id)
	}
}

// remove deletes job id from the store, from this node's memory, and its
// local files.
func (m *Manager) remove(ctx context.Context, id string) {
	if err := m.store.remove(ctx, id); err != nil {
		m.d.Logger.Warn("cannot remove an ended retrospective job", "job", id, "err", err)
		return
	}
	_ = os.RemoveAll(filepath.Join(m.d.Config.Directory, id))
	m.mu.Lock()
	delete(m.jobs, id)
	m.mu.Unlock()
	m.metrics.removed.Inc()
	m.d.Logger.Info("removed an ended retrospective job past its retention", "job", id, "retention", m.d.Config.Retention)
}

// remove deletes job id's directory.
func (s dirStore) remove(_ context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("job %q: not a job id", id)
	}
	return os.RemoveAll(filepath.Join(s.dir, id))
}

// remove deletes job id's objects, its record last: a removal cut short
// leaves the job listed, and the next scan finishes it.
func (s *BucketStore) remove(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("job %q: not a job id", id)
	}
	var keys []string
	err := s.bkt.Iter(ctx, jobsPrefix+id+"/", func(name string) error {
		if name != jobKey(id, jobObject) {
			keys = append(keys, name)
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return fmt.Errorf("job store: list %s: %w", jobsPrefix+id, err)
	}
	for _, k := range append(keys, jobKey(id, jobObject)) {
		if err := s.bkt.Delete(ctx, k); err != nil && !s.bkt.IsObjNotFoundErr(err) {
			return errors.Join(fmt.Errorf("job store: delete %s", k), err)
		}
	}
	return nil
}
