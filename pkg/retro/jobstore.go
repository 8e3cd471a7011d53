package retro

import "context"

// jobStore is where a Manager keeps its jobs: dirStore (a local directory,
// single node without a governance store) or BucketStore (the governance
// store's bucket, shared by every node).
//
// Concurrency: both are safe for concurrent use by several goroutines, but
// neither orders two writers of one job: each save replaces the whole
// record, last writer wins. The Manager serialises the writes of one job in
// a process; between processes, only the job's coordinator writes its record
// (lease.go), and requests from the API go to a separate control object
// (BucketStore.RequestControl) so they are never overwritten by progress.
type jobStore interface {
	// save replaces j's record.
	save(ctx context.Context, j *Job) error
	// savePlan replaces job id's plan.
	savePlan(ctx context.Context, id string, items []Item) error
	// loadPlan returns job id's plan, ok false when it has none yet.
	loadPlan(ctx context.Context, id string) (items []Item, ok bool, err error)
	// list returns every stored job, oldest first.
	list(ctx context.Context) ([]*Job, error)
	// remove deletes job id and everything kept with it.
	remove(ctx context.Context, id string) error
}

var (
	_ jobStore = dirStore{}
	_ jobStore = (*BucketStore)(nil)
)
