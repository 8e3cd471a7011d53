package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// States of a request.
const (
	reqQueued   int32 = iota
	reqTaken          // the writer owns it and will finish it
	reqCanceled       // Append gave up before the writer took it
)

// request is one queued Append.
type request struct {
	typ     RecordType
	payload []byte
	end     Position
	err     error
	state   atomic.Int32
	done    chan struct{} // capacity 1
}

// finish completes r.
func (r *request) finish(end Position, err error) {
	r.end, r.err = end, err
	r.done <- struct{}{}
}

// Append writes one record and returns once it is durable according to the
// sync policy (fsynced for "always" and "group", written to the operating
// system for "interval"). The returned position is the end of the record:
// Commit with it acknowledges the record. Concurrent appends are batched
// into one write and fsync. payload must not be modified until Append
// returns.
//
// Errors: ErrFull (errors.Is) when a bound is reached under the
// backpressure policy or the disk is full: retryable, answer 429.
// ErrRecordTooLarge: not retryable. ErrClosed after Close. Other errors are
// I/O errors of this append; the WAL stays consistent and later appends may
// succeed. If ctx ends before the writer has taken the record, Append
// returns the context's error and the record is not written; once the
// writer has taken it, Append waits for the outcome of its write.
func (w *WAL) Append(ctx context.Context, typ RecordType, payload []byte) (Position, error) {
	return w.append(ctx, typ, payload, false)
}

// append is Append; expected withdraws the record's announcement (Expect)
// once it is queued, or when it will not be.
func (w *WAL) append(ctx context.Context, typ RecordType, payload []byte, expected bool) (Position, error) {
	queued := false
	if expected {
		defer func() {
			if !queued {
				w.Expect(-1)
			}
		}()
	}
	if typ == 0 {
		return Position{}, errors.New("append: record type 0 is reserved")
	}
	if int64(headerSize+len(payload)) > w.cfg.SegmentSize {
		w.m.appendFailures.WithLabelValues(reasonTooLarge).Inc()
		return Position{}, fmt.Errorf("append %d bytes: %w", len(payload), ErrRecordTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return Position{}, fmt.Errorf("append: %w", err)
	}
	r := w.reqPool.Get().(*request)
	r.typ, r.payload = typ, payload
	r.state.Store(reqQueued)
	w.qmu.Lock()
	if !w.accepting {
		w.qmu.Unlock()
		r.payload = nil
		w.reqPool.Put(r)
		w.m.appendFailures.WithLabelValues(reasonClosed).Inc()
		return Position{}, ErrClosed
	}
	w.queue = append(w.queue, r)
	if expected {
		// Under qmu, so a writer that sees no more expected appends finds
		// this one in the queue.
		w.expected.Add(-1)
		queued = true
	}
	w.qmu.Unlock()
	w.poke()
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCanceled) {
			// The writer skips and drops r; it is not reused.
			return Position{}, fmt.Errorf("append: %w", ctx.Err())
		}
		<-r.done // the write is under way: report its outcome
	}
	end, err := r.end, r.err
	r.payload, r.err = nil, nil
	w.reqPool.Put(r)
	return end, err
}

// Expect announces n appends on their way (AppendExpected), or withdraws
// -n announced ones that will not come: a group under the "group" policy
// waits for announced appends, up to GroupCommitDelay (see gather). A
// caller that announces one append must follow it with exactly one
// AppendExpected or Expect(-1). Safe for concurrent use.
func (w *WAL) Expect(n int) {
	w.expected.Add(int64(n))
	if n < 0 {
		w.poke() // a group waiting for it may go
	}
}

// AppendExpected is Append of a record announced with Expect(1): the
// announcement ends as the record joins the queue.
func (w *WAL) AppendExpected(ctx context.Context, typ RecordType, payload []byte) (Position, error) {
	return w.append(ctx, typ, payload, true)
}

// poke wakes the writer without blocking.
func (w *WAL) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine.
func (w *WAL) run() {
	defer close(w.done)
	var tick <-chan time.Time
	if w.cfg.SyncPolicy == SyncInterval {
		t := time.NewTicker(w.cfg.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-w.wake:
			w.gather()
			w.process(w.takeQueue())
		case <-tick:
			w.syncHead()
		case <-w.stop:
			w.process(w.takeQueue())
			w.syncHead()
			if w.head != nil {
				w.trimHead()
				if err := w.head.Close(); err != nil {
					w.logger.Warn("close wal head segment", "segment", w.headIdx, "err", err)
				}
				w.head = nil
			}
			return
		}
	}
}

// gather holds, under the group policy, the group that just started, so
// more appends share its fsync; it waits at most GroupCommitDelay:
//
//   - for the appends announced with Expect (pushes already in the
//     ingester), until every one has queued or been withdrawn;
//   - and until GroupCommitDelay has passed since the previous group's
//     fsync began, so fsyncs start at most once per delay (pacing): what
//     arrives in between joins this group.
//
// An append after a quiet spell goes at once: a fixed wait would add its
// whole length to every append's latency, and timer wake-ups on a busy
// machine come late (a 2 ms timer fired after 5-7 ms under load). Pacing
// bounds the fsync rate where it costs: with a few closed-loop senders,
// groups formed by announced appends alone held 1.7 records, paced ones
// 2.5 (docs/wal.md).
func (w *WAL) gather() {
	d := w.cfg.GroupCommitDelay
	if d == 0 {
		d = DefaultGroupCommitDelay
	}
	if w.cfg.SyncPolicy != SyncGroup || d < 0 {
		return
	}
	start := time.Now()
	paced, limit := w.lastSync.Add(d), start.Add(d)
	if !start.Before(paced) && w.expected.Load() <= 0 {
		return
	}
	if w.gatherTimer == nil {
		w.gatherTimer = time.NewTimer(time.Hour)
	}
	defer w.gatherTimer.Stop()
	timedOut, awaited := false, false // awaited: an announced append was waited for
	for {
		announced := w.expected.Load() > 0
		awaited = awaited || announced
		until := paced
		if announced {
			until = limit // paced <= limit: the previous fsync began before start
		}
		wait := time.Until(until)
		if wait <= 0 {
			switch {
			case announced:
				w.m.waitsDelay.Inc()
			case timedOut || !awaited:
				w.m.waitsPaced.Inc()
			default:
				w.m.waitsArrived.Inc()
			}
			return
		}
		w.gatherTimer.Reset(wait)
		select {
		case <-w.wake: // an append queued, or one was withdrawn
			timedOut = false
		case <-w.gatherTimer.C:
			timedOut = true
		case <-w.stop:
			return
		}
	}
}

// takeQueue removes and returns the queued requests.
func (w *WAL) takeQueue() []*request {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// maxWriteBuffer is how many encoded bytes the writer buffers before
// writing them out; the group is still fsynced once at its end.
const maxWriteBuffer = 1 << 20

// process writes a batch of requests, grouping them per fsync.
func (w *WAL) process(batch []*request) {
	if len(batch) == 0 {
		return
	}
	now := w.now()
	ageFull := w.enforceAge(now)
	w.buf, w.group, w.written = w.buf[:0], w.group[:0], 0
	for _, r := range batch {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // canceled by its caller
		}
		if ageFull {
			w.fail(r, reasonFull, fmt.Errorf("%w: oldest uncommitted record is older than max_age %s", ErrFull, w.cfg.MaxAge))
			continue
		}
		recLen := int64(headerSize + len(r.payload))
		if !w.makeRoom(recLen + w.unsynced()) {
			w.fail(r, reasonFull, fmt.Errorf("%w: max_size_bytes %d reached", ErrFull, w.cfg.MaxSizeBytes))
			continue
		}
		if w.head != nil && w.headSize+w.unsynced()+recLen > w.cfg.SegmentSize && w.headSize+w.unsynced() > 0 {
			w.flush(now)
			w.rotate()
		}
		if w.head == nil {
			if err := w.openHead(); err != nil {
				w.failIO(r, err)
				continue
			}
		}
		w.buf = appendRecord(w.buf, r.typ, r.payload)
		r.end = Position{Segment: w.headIdx, Offset: w.headSize + w.unsynced()}
		w.group = append(w.group, r)
		if w.cfg.SyncPolicy == SyncAlways {
			w.flush(now)
		} else if len(w.buf) >= maxWriteBuffer {
			w.writeBuf()
		}
	}
	w.flush(now)
	if cap(w.buf) > 4*maxWriteBuffer {
		w.buf = nil // do not pin a huge buffer after one large record
	}
}

// unsynced returns the bytes of the current group: written but not yet
// fsynced, plus buffered.
func (w *WAL) unsynced() int64 { return w.written + int64(len(w.buf)) }

// Preallocation (Config.Preallocate): zeros are written zeroChunk bytes at
// a time, preallocStep bytes ahead of the data when the data reaches them.
const (
	zeroChunk    = 1 << 20
	preallocStep = 4 << 20
)

// preallocate writes zeros in the head from w.zeroed on, so that at least
// the bytes up to end, and up to preallocStep more within the segment size,
// exist on disk before the data overwrites them. Only the fsync that
// follows an extension pays for the new blocks and the new file size; the
// ones after it flush data alone. The data itself is written with Write at
// the file's offset, which WriteAt does not move.
//
// Preallocation only saves work: when writing zeros fails (a nearly full
// disk), the head goes on without it and the data is written anyway, so an
// append fails only if its own bytes do not fit.
func (w *WAL) preallocate(end int64) {
	if !w.cfg.Preallocate || w.noPrealloc || end <= w.zeroed {
		return
	}
	target := max(end, min(w.zeroed+preallocStep, w.cfg.SegmentSize))
	if w.zeros == nil {
		w.zeros = make([]byte, zeroChunk)
	}
	for w.zeroed < target {
		n := min(int64(len(w.zeros)), target-w.zeroed)
		m, err := w.head.WriteAt(w.zeros[:n], w.zeroed)
		w.zeroed += int64(m)
		if err != nil {
			w.noPrealloc = true
			w.logger.Debug("stop preallocating wal segment", "segment", w.headIdx, "err", err)
			return
		}
	}
}

// trimHead cuts the preallocated zeros off the head before it is sealed,
// so that a sealed segment's file holds exactly its records. The fsync
// makes the cut durable before a next segment is created: after a crash
// only the last segment can carry zeros, and Open trims them (repair).
func (w *WAL) trimHead() {
	if w.zeroed <= w.headSize {
		return
	}
	if err := truncateSync(w.head, w.headSize); err != nil {
		// Readers of this process read only up to the records' end; after
		// a restart they would count the zeros as a corrupt region.
		w.logger.Warn("trim preallocated wal segment", "segment", w.headIdx, "size", w.headSize, "err", err)
		return
	}
	w.zeroed = w.headSize
}

// writeBuf writes the buffered bytes of the current group. On failure the
// group is failed and the head abandoned.
func (w *WAL) writeBuf() bool {
	if len(w.buf) == 0 {
		return true
	}
	w.preallocate(w.headSize + w.written + int64(len(w.buf)))
	n, err := w.head.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.failGroup(fmt.Errorf("write segment %d: %w", w.headIdx, err))
		return false
	}
	w.written += int64(len(w.buf))
	w.buf = w.buf[:0]
	return true
}

// failGroup abandons the head and fails every request of the group.
func (w *WAL) failGroup(err error) {
	w.abandonHead(err)
	for _, r := range w.group {
		w.failIO(r, err)
	}
	w.buf, w.group, w.written = w.buf[:0], w.group[:0], 0
}

// flush writes and (unless the interval policy) fsyncs the current group,
// then publishes it to readers and completes its requests.
func (w *WAL) flush(now time.Time) {
	if len(w.group) == 0 {
		return
	}
	if !w.writeBuf() {
		return
	}
	if w.cfg.SyncPolicy != SyncInterval {
		w.lastSync = time.Now()
		if err := w.syncFile(w.head); err != nil {
			w.failGroup(fmt.Errorf("sync segment %d: %w", w.headIdx, err))
			return
		}
	}
	if w.failures > 0 {
		w.logger.Info("wal writes recovered", "failed_writes", w.failures)
		w.failures = 0
	}
	w.dirty = w.cfg.SyncPolicy == SyncInterval
	w.headSize += w.written
	end := Position{Segment: w.headIdx, Offset: w.headSize}
	w.mu.Lock()
	w.segs[len(w.segs)-1].size = w.headSize
	w.diskSize += w.written
	w.addMarkLocked(end, now)
	w.updateSizeMetricsLocked()
	w.signalLocked()
	w.mu.Unlock()
	w.m.groupRecords.Observe(float64(len(w.group)))
	w.m.appendedRecords.Add(float64(len(w.group)))
	w.m.appendedBytes.Add(float64(w.written))
	for _, r := range w.group {
		r.finish(r.end, nil)
	}
	w.buf, w.group, w.written = w.buf[:0], w.group[:0], 0
}

// syncFile makes what was written to f durable (File.Datasync) and
// records the duration.
func (w *WAL) syncFile(f File) error {
	start := time.Now()
	err := f.Datasync()
	w.m.fsyncDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		w.m.fsyncFailures.Inc()
	}
	return err
}

// syncHead fsyncs the head if the interval policy left it dirty.
func (w *WAL) syncHead() {
	if w.head == nil || !w.dirty {
		return
	}
	if err := w.syncFile(w.head); err != nil {
		// Acknowledged data may be lost on power failure; stop writing to
		// a file whose state is unknown.
		w.abandonHead(fmt.Errorf("sync segment %d: %w", w.headIdx, err))
		return
	}
	w.dirty = false
}

// rotate seals the head segment; the next record opens a new one.
func (w *WAL) rotate() {
	if w.head == nil {
		return
	}
	w.syncHead()
	if w.head == nil {
		return
	}
	w.trimHead()
	if err := w.head.Close(); err != nil {
		w.logger.Warn("close sealed wal segment", "segment", w.headIdx, "err", err)
	}
	w.head = nil
	w.mu.Lock()
	w.headOpen = false
	w.signalLocked()
	w.mu.Unlock()
}

// openHead creates the next segment and makes it the head.
func (w *WAL) openHead() error {
	w.mu.Lock()
	idx := w.nextIndex
	w.mu.Unlock()
	// Not O_APPEND: see preallocate.
	f, err := w.fs.OpenFile(w.segmentPath(idx), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create segment %d: %w", idx, err)
	}
	if err := syncDir(w.fs, w.cfg.Dir); err != nil {
		_ = f.Close()
		_ = w.fs.Remove(w.segmentPath(idx))
		return fmt.Errorf("sync wal dir for segment %d: %w", idx, err)
	}
	w.head, w.headIdx, w.headSize, w.dirty = f, idx, 0, false
	w.zeroed, w.noPrealloc = 0, false
	w.mu.Lock()
	w.nextIndex = idx + 1
	w.segs = append(w.segs, segment{index: idx})
	w.headOpen = true
	w.updateSizeMetricsLocked()
	w.signalLocked()
	w.mu.Unlock()
	return nil
}

// abandonHead handles a failed write or fsync: the head is truncated back
// to its acknowledged size, closed and sealed, so that records of the
// failed group are never read and later appends go to a new segment. An
// empty head is removed instead, so that a full disk does not leave a trail
// of empty segments. Only the first failure of a streak is logged as an
// error.
func (w *WAL) abandonHead(cause error) {
	w.failures++
	if w.failures == 1 {
		w.logger.Error("wal write failed; appends fail until a write succeeds",
			"segment", w.headIdx, "size", w.headSize, "err", cause)
	} else {
		w.logger.Debug("wal write failed again", "segment", w.headIdx, "failures", w.failures, "err", cause)
	}
	_ = w.head.Close()
	if w.headSize == 0 {
		err := w.fs.Remove(w.segmentPath(w.headIdx))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			w.logger.Warn("remove failed empty wal segment", "segment", w.headIdx, "err", err)
		}
		w.head, w.dirty = nil, false
		w.mu.Lock()
		if err == nil || errors.Is(err, os.ErrNotExist) {
			w.segs = w.segs[:len(w.segs)-1]
			w.nextIndex = w.headIdx
		}
		w.headOpen = false
		w.updateSizeMetricsLocked()
		w.signalLocked()
		w.mu.Unlock()
		return
	}
	if err := w.truncateHead(); err != nil {
		w.logger.Warn("truncate failed wal segment; readers skip the invalid tail", "segment", w.headIdx, "err", err)
	}
	w.head, w.dirty = nil, false
	w.mu.Lock()
	w.headOpen = false
	w.signalLocked()
	victims := w.releaseCommittedLocked() // a full disk: free what was already forwarded
	w.mu.Unlock()
	w.removeSegments(victims)
}

// truncateHead cuts the closed head file back to its acknowledged size.
func (w *WAL) truncateHead() error {
	f, err := w.fs.OpenFile(w.segmentPath(w.headIdx), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = truncateSync(f, w.headSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fail completes r with err, counted under reason.
func (w *WAL) fail(r *request, reason string, err error) {
	w.m.appendFailures.WithLabelValues(reason).Inc()
	r.finish(Position{}, err)
}

// failIO completes r with an I/O error; disk-full errors become ErrFull.
func (w *WAL) failIO(r *request, err error) {
	if isDiskFull(err) {
		w.fail(r, reasonFull, fmt.Errorf("%w: %w", ErrFull, err))
		return
	}
	w.fail(r, reasonIO, err)
}

// isDiskFull reports whether err means the disk or quota is exhausted.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// makeRoom reports whether extra bytes fit under max_size_bytes, deleting
// the oldest sealed segments first under the drop_oldest policy.
func (w *WAL) makeRoom(extra int64) bool {
	if w.cfg.MaxSizeBytes <= 0 {
		return true
	}
	for {
		w.mu.Lock()
		size := w.diskSize
		w.mu.Unlock()
		if size+extra <= w.cfg.MaxSizeBytes {
			return true
		}
		if w.cfg.OverflowPolicy != OverflowDropOldest || !w.dropOldest("max_size_bytes") {
			return false
		}
	}
}

// enforceAge applies max_age: under drop_oldest it deletes old sealed
// segments; under backpressure it reports whether appends must be refused.
func (w *WAL) enforceAge(now time.Time) bool {
	if w.cfg.MaxAge <= 0 {
		return false
	}
	for {
		w.mu.Lock()
		old := w.oldestAgeLocked(now) > w.cfg.MaxAge
		w.mu.Unlock()
		if !old {
			return false
		}
		if w.cfg.OverflowPolicy != OverflowDropOldest {
			return true
		}
		if !w.dropOldest("max_age") {
			return false
		}
	}
}

// dropOldest deletes the oldest sealed segment unsent. It reports false
// when there is none.
func (w *WAL) dropOldest(bound string) bool {
	w.mu.Lock()
	if len(w.segs) == 0 || w.isHeadLocked(0) {
		w.mu.Unlock()
		return false
	}
	s := w.segs[0]
	w.segs = w.segs[1:]
	w.diskSize -= s.size
	w.afterRemovalLocked()
	w.mu.Unlock()
	if err := w.fs.Remove(w.segmentPath(s.index)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.logger.Warn("remove dropped wal segment", "segment", s.index, "err", err)
	}
	w.m.droppedSegments.Inc()
	w.m.droppedBytes.Add(float64(s.size))
	w.logger.Warn("wal overflow: dropped oldest segment unsent", "bound", bound, "segment", s.index, "bytes", s.size)
	return true
}
