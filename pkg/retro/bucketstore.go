package retro

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/thanos-io/objstore"
)

// Object names under the governance store's bucket.
const (
	jobsPrefix  = "jobs/"
	jobObject   = "job.json"     // the record: written by the coordinator (and by the API when it queues the job)
	planObject  = "plan.json"    // the plan: written once, by the coordinator that planned
	ctrlObject  = "control.json" // cancel/resume requests: written only by the API
	ctrlCancel  = "cancel"
	ctrlResume  = "resume"
	maxJobBytes = 64 << 20
)

// Control is the latest cancel or resume request of a job, written only by
// the API (distributors) so that the coordinator's progress writes never
// overwrite it. Seq increases with every request; the coordinator acts on a
// request whose Seq is above the job's ControlSeq.
type Control struct {
	Request string    `json:"request"` // cancel or resume
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
}

// BucketStore keeps jobs in an objstore bucket (the governance store's):
//
//	jobs/<id>/job.json      the job record (request, rules, state, progress,
//	                        checkpoint per batch, owner and lease, log)
//	jobs/<id>/plan.json     its plan
//	jobs/<id>/control.json  the latest cancel/resume request
//
// Each object is replaced whole by one Upload. Safe for concurrent use; see
// jobStore for who writes what.
type BucketStore struct{ bkt objstore.Bucket }

// NewBucketStore returns a job store on bkt; it does not close bkt.
func NewBucketStore(bkt objstore.Bucket) *BucketStore { return &BucketStore{bkt: bkt} }

func jobKey(id, name string) string { return jobsPrefix + id + "/" + name }

func (s *BucketStore) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.bkt.Upload(ctx, key, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("job store: write %s: %w", key, err)
	}
	return nil
}

// get decodes key into v; ok is false when it does not exist. A record
// that does not decode is read again a few times: a filesystem bucket
// replaces an object in place, so a read can see it half written.
func (s *BucketStore) get(ctx context.Context, key string, v any) (ok bool, err error) {
	for try := 0; ; try++ {
		ok, err = s.getOnce(ctx, key, v)
		var syntax *json.SyntaxError
		if !errors.As(err, &syntax) && !errors.Is(err, io.ErrUnexpectedEOF) || try == 4 {
			return ok, err
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, err
		case <-t.C:
		}
	}
}

func (s *BucketStore) getOnce(ctx context.Context, key string, v any) (ok bool, err error) {
	r, err := s.bkt.Get(ctx, key)
	if err != nil {
		if s.bkt.IsObjNotFoundErr(err) {
			return false, nil
		}
		return false, fmt.Errorf("job store: read %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxJobBytes+1))
	if err != nil {
		return false, fmt.Errorf("job store: read %s: %w", key, err)
	}
	if len(b) > maxJobBytes {
		return false, fmt.Errorf("job store: %s is larger than %d bytes", key, maxJobBytes)
	}
	if len(b) == 0 {
		return false, fmt.Errorf("job store: decode %s: %w", key, io.ErrUnexpectedEOF)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("job store: decode %s: %w", key, err)
	}
	return true, nil
}

func (s *BucketStore) save(ctx context.Context, j *Job) error {
	return s.put(ctx, jobKey(j.ID, jobObject), j)
}

func (s *BucketStore) savePlan(ctx context.Context, id string, items []Item) error {
	out := make([]itemJSON, len(items))
	for i, it := range items {
		out[i] = it.toJSON()
	}
	return s.put(ctx, jobKey(id, planObject), out)
}

func (s *BucketStore) loadPlan(ctx context.Context, id string) ([]Item, bool, error) {
	var in []itemJSON
	ok, err := s.get(ctx, jobKey(id, planObject), &in)
	if !ok || err != nil {
		return nil, false, err
	}
	items := make([]Item, len(in))
	for i, j := range in {
		items[i] = j.item()
	}
	return items, true, nil
}

// Get returns job id, ErrNotFound (wrapped) when there is none.
func (s *BucketStore) Get(ctx context.Context, id string) (*Job, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	var j Job
	ok, err := s.get(ctx, jobKey(id, jobObject), &j)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("job %q: %w", id, ErrNotFound)
	}
	return &j, nil
}

func (s *BucketStore) list(ctx context.Context) ([]*Job, error) {
	var ids []string
	err := s.bkt.Iter(ctx, jobsPrefix, func(name string) error {
		id := strings.TrimSuffix(strings.TrimPrefix(name, jobsPrefix), "/")
		if idPattern.MatchString(id) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("job store: list %s: %w", jobsPrefix, err)
	}
	var out []*Job
	for _, id := range ids {
		j, err := s.Get(ctx, id)
		if err != nil {
			// A directory without its record: a submission that died
			// between objects, or a record deleted; not a job.
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, j)
	}
	sortJobs(out)
	return out, nil
}

// List returns every stored job, oldest first.
func (s *BucketStore) List(ctx context.Context) ([]*Job, error) { return s.list(ctx) }

// RequestControl records a cancel or resume request for job id, with a Seq
// above every earlier one. Only the API calls it.
func (s *BucketStore) RequestControl(ctx context.Context, id, request string) (Control, error) {
	if request != ctrlCancel && request != ctrlResume {
		return Control{}, fmt.Errorf("control request %q: use %s or %s", request, ctrlCancel, ctrlResume)
	}
	prev, _, err := s.Control(ctx, id)
	if err != nil {
		return Control{}, err
	}
	c := Control{Request: request, Seq: prev.Seq + 1, At: time.Now().UTC()}
	return c, s.put(ctx, jobKey(id, ctrlObject), c)
}

// Control returns job id's latest request, ok false when there is none.
func (s *BucketStore) Control(ctx context.Context, id string) (c Control, ok bool, err error) {
	ok, err = s.get(ctx, jobKey(id, ctrlObject), &c)
	return c, ok, err
}

// outputPrefix is where job id's openmetrics batch files are kept.
func outputPrefix(id string) string { return jobKey(id, "openmetrics/") }

// putOutput stores one batch file of job id's openmetrics output, replacing
// any earlier one of that name (a batch redone after a crash).
func (s *BucketStore) putOutput(ctx context.Context, id, name string, r io.Reader) error {
	if err := s.bkt.Upload(ctx, outputPrefix(id)+name, r); err != nil {
		return fmt.Errorf("job store: write %s: %w", outputPrefix(id)+name, err)
	}
	return nil
}

// outputs returns the names of job id's openmetrics batch files, sorted.
func (s *BucketStore) outputs(ctx context.Context, id string) ([]string, error) {
	var names []string
	err := s.bkt.Iter(ctx, outputPrefix(id), func(key string) error {
		if name := strings.TrimPrefix(key, outputPrefix(id)); strings.HasSuffix(name, ".om") && !strings.Contains(name, "/") {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("job store: list %s: %w", outputPrefix(id), err)
	}
	slices.Sort(names)
	return names, nil
}

// output opens one batch file of job id's openmetrics output.
func (s *BucketStore) output(ctx context.Context, id, name string) (io.ReadCloser, error) {
	rc, err := s.bkt.Get(ctx, outputPrefix(id)+name)
	if err != nil {
		return nil, fmt.Errorf("job store: read %s: %w", outputPrefix(id)+name, err)
	}
	return rc, nil
}
