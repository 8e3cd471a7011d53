package retro

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/promgov/promgov/internal/fileutil"
)

// Job states.
const (
	StateQueued    = "queued"
	StatePlanning  = "planning"
	StateRunning   = "running"
	StatePaused    = "paused" // stopped on an error; resume on request
	StateCancelled = "cancelled"
	StateSucceeded = "succeeded"
	StateFailed    = "failed" // cannot run (merges, refused preflight); not resumable
)

// Progress of a job.
type Progress struct {
	SeriesTotal    int64 `json:"series_total"`
	SeriesDone     int64 `json:"series_done"`
	SamplesTotal   int64 `json:"samples_total"`
	SamplesRead    int64 `json:"samples_read"`
	SamplesWritten int64 `json:"samples_written"`
	SeriesDeleted  int64 `json:"series_deleted"`
	BatchesTotal   int   `json:"batches_total"`
	BatchesDone    int   `json:"batches_done"`
	// SamplesPerSecond is the rate since the job (last) started running.
	SamplesPerSecond float64 `json:"samples_per_second"`
	SeriesPerSecond  float64 `json:"series_per_second"`
	ETASeconds       float64 `json:"eta_seconds"`
}

// Job is a job's record: its request, state, progress and checkpoint.
type Job struct {
	ID    string `json:"id"`
	Spec  Spec   `json:"spec"`
	Rules string `json:"rules"` // the resolved rules (YAML), fixed at submission
	// Aggregations is the resolved aggregation rules (a YAML list), fixed
	// at submission; empty: none.
	Aggregations string    `json:"aggregations,omitempty"`
	State        string    `json:"state"`
	Error        string    `json:"error,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	Progress     Progress  `json:"progress"`
	DryRun       *DryRun   `json:"dry_run,omitempty"`
	// Done marks the batches copied, verified and (when asked) deleted: the
	// checkpoint.
	Done []bool `json:"done,omitempty"`
	// Log is the latest of the job's events (what each batch read, wrote and
	// deleted), at most maxLog.
	Log []string `json:"log,omitempty"`
	// Owner is the node coordinating the job (jobs in the governance store;
	// empty for a job run by the process that accepted it) and LeaseRenewed
	// when it last said so: see lease.go.
	Owner        string    `json:"owner,omitempty"`
	LeaseRenewed time.Time `json:"lease_renewed,omitzero"`
	// ControlSeq is the Seq of the last cancel/resume request (Control) the
	// coordinator applied; PendingControl, filled when the API reads the
	// job, is a later request not yet applied.
	ControlSeq     int64  `json:"control_seq,omitempty"`
	PendingControl string `json:"pending_control,omitempty"`
}

const maxLog = 100

func (j *Job) logf(format string, args ...any) {
	j.Log = append(j.Log, time.Now().UTC().Format(time.RFC3339)+" "+fmt.Sprintf(format, args...))
	if len(j.Log) > maxLog {
		j.Log = j.Log[len(j.Log)-maxLog:]
	}
}

// dirStore keeps jobs as JSON files: <dir>/<id>/job.json and plan.json.
// Each file is replaced atomically. Not safe for concurrent writes of one
// job; the Manager serialises them. It is the jobStore of a single node
// without a governance store.
type dirStore struct{ dir string }

var idPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$`)

func (s dirStore) writeJSON(id, name string, v any) error {
	if err := os.MkdirAll(filepath.Join(s.dir, id), 0o755); err != nil {
		return err
	}
	_, err := fileutil.WriteAtomic(filepath.Join(s.dir, id, name), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(v)
	})
	return err
}

func (s dirStore) readJSON(id, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(s.dir, id, name))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s dirStore) save(_ context.Context, j *Job) error { return s.writeJSON(j.ID, "job.json", j) }

func (s dirStore) savePlan(_ context.Context, id string, items []Item) error {
	out := make([]itemJSON, len(items))
	for i, it := range items {
		out[i] = it.toJSON()
	}
	return s.writeJSON(id, "plan.json", out)
}

// loadPlan returns the job's plan, or ok false when it has none yet.
func (s dirStore) loadPlan(_ context.Context, id string) (items []Item, ok bool, err error) {
	var in []itemJSON
	if err := s.readJSON(id, "plan.json", &in); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	items = make([]Item, len(in))
	for i, j := range in {
		items[i] = j.item()
	}
	return items, true, nil
}

// list returns every stored job, oldest first.
func (s dirStore) list(_ context.Context) ([]*Job, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Job
	for _, e := range ents {
		if !e.IsDir() || !idPattern.MatchString(e.Name()) {
			continue
		}
		var j Job
		if err := s.readJSON(e.Name(), "job.json", &j); err != nil {
			return nil, fmt.Errorf("job %s: %w", e.Name(), err)
		}
		out = append(out, &j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}
