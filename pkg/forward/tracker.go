package forward

import (
	"sync"

	"github.com/promgov/promgov/pkg/wal"
)

// tracker follows the WAL records the reader has handed to the shards and
// finds the end of the longest prefix of records whose every part has been
// settled (written or dropped as non-recoverable). Only that prefix may be
// committed: Commit(p) declares everything before p delivered.
//
// Each record starts with one reference held by the reader while it is
// being distributed, plus one per pending request carrying part of it. It
// is safe for concurrent use; shards call it with their own lock held, and
// it never calls back into a shard.
type tracker struct {
	mu    sync.Mutex
	base  uint64 // sequence number of recs[0]
	recs  []trackedRecord
	acked wal.Position // end of the settled prefix
	any   bool         // acked is valid
}

// trackedRecord is one record not yet part of the settled prefix.
type trackedRecord struct {
	next wal.Position
	refs int
}

// add registers the next record read (ending at next) with the reader's
// reference and returns its sequence number.
func (t *tracker) add(next wal.Position) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recs = append(t.recs, trackedRecord{next: next, refs: 1})
	return t.base + uint64(len(t.recs)-1)
}

// ref adds a reference to record seq.
func (t *tracker) ref(seq uint64) {
	t.mu.Lock()
	t.recs[seq-t.base].refs++
	t.mu.Unlock()
}

// release drops a reference to record seq and advances the settled prefix.
func (t *tracker) release(seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recs[seq-t.base].refs--
	n := 0
	for n < len(t.recs) && t.recs[n].refs == 0 {
		t.acked, t.any = t.recs[n].next, true
		n++
	}
	if n > 0 {
		clear(t.recs[:n])
		t.recs = t.recs[n:]
		t.base += uint64(n)
		if cap(t.recs) > 1024 && len(t.recs) < cap(t.recs)/4 {
			t.recs = append([]trackedRecord(nil), t.recs...)
		}
	}
}

// settled returns the end of the settled prefix, false if none yet.
func (t *tracker) settled() (wal.Position, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acked, t.any
}

// outstanding is the number of records read but not yet settled.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recs)
}

// attach records that p carries part of record seq; s.mu of p's shard is
// held. A no-op without a WAL.
func (f *Forwarder) attach(p *pendingRequest, seq uint64) {
	if f.tr == nil {
		return
	}
	if n := len(p.records); n > 0 && p.records[n-1] == seq {
		return
	}
	p.records = append(p.records, seq)
	f.tr.ref(seq)
}
