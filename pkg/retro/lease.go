package retro

import (
	"time"

	"github.com/promgov/promgov/pkg/ring"
)

// CoordinatorKey is the ring key of job id. The ring hashes it (xxhash) onto
// one of its partitions, and the ACTIVE ingester that owns that partition by
// consistent hashing with bounded loads (ring.Placement) coordinates the job.
// Every node computes the same owner from the same member set; when the set
// changes, only the jobs of the partitions that moved change coordinator.
func CoordinatorKey(id string) []byte { return []byte("promgov/retrospective/" + id) }

// RingOwner returns the coordinator of a job by r's current placement (ok
// false when no ingester is ACTIVE).
func RingOwner(r interface{ Placement() *ring.Placement }) func(id string) (string, bool) {
	return func(id string) (string, bool) {
		m, ok := r.Placement().Owner(CoordinatorKey(id))
		return m.Name, ok
	}
}

// leaseFree reports whether self may claim job j at now: j has no owner,
// self already owns it, or its owner stopped renewing its lease more than
// ttl ago (the node is gone, or cannot reach the store). A live owner
// renews its lease every scan, so it keeps the job while the ring settles
// and only gives it up itself (release) when the ring has chosen another
// node.
func leaseFree(j *Job, self string, now time.Time, ttl time.Duration) bool {
	return j.Owner == "" || j.Owner == self || now.Sub(j.LeaseRenewed) > ttl
}

// active reports whether a job still has work for a coordinator.
func active(state string) bool {
	return state == StateQueued || state == StatePlanning || state == StateRunning
}

// decision is what a coordinator does with a job on a scan.
type decision int

const (
	leave   decision = iota // not ours, or nothing to do
	claim                   // ours by the ring and its lease is free: run it from its checkpoint
	renew                   // running here and still ours: renew the lease
	release                 // running here but the ring chose another node: stop and clear the owner
	yield                   // running here but another node holds it now (our lease lapsed): stop, write nothing
)

// decide is the ownership rule. j is the record as stored, ringOwner the
// ring's choice for it (ok false: no ACTIVE ingester), running whether this
// node runs it now.
func decide(j *Job, self, ringOwner string, ok, running bool, now time.Time, ttl time.Duration) decision {
	mine := ok && ringOwner == self
	if running {
		switch {
		case j.Owner != "" && j.Owner != self:
			return yield
		case !mine:
			return release
		default:
			return renew
		}
	}
	if mine && active(j.State) && leaseFree(j, self, now, ttl) {
		return claim
	}
	return leave
}
