package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Reader reads records in log order. It is meant for one goroutine (the
// forwarder); any number of readers may run at once.
type Reader struct {
	w    *WAL
	pos  Position
	f    File
	fIdx int
	sc   segmentScanner
}

// NewReader returns a reader starting at from, normally Checkpoint(). Call
// Close when done.
func (w *WAL) NewReader(from Position) *Reader {
	return &Reader{w: w, pos: from}
}

// SharePayloads makes the reader return payloads that alias its own
// buffers: a record's Payload is then valid only until the next call to
// Next or Close. It saves an allocation and, for records within the
// read-ahead window, the copy, for a reader that is done with each record
// before it reads the next. Call it before the first Next.
func (r *Reader) SharePayloads() { r.sc.share = true }

// Position returns where the next record will be read.
func (r *Reader) Position() Position { return r.pos }

// readState is what a reader needs to know about its segment.
type readState struct {
	closed  bool
	first   int  // index of the first segment, -1 if none
	exists  bool // the segment of pos exists
	size    int64
	sealed  bool
	next    int // index of the next segment after pos, -1 if none
	changed <-chan struct{}
}

// state snapshots the log around pos.
func (w *WAL) state(pos Position) readState {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := readState{closed: w.closed, first: -1, next: -1, changed: w.notify}
	if len(w.segs) > 0 {
		st.first = w.segs[0].index
	}
	for i, s := range w.segs {
		if s.index == pos.Segment {
			st.exists, st.size, st.sealed = true, s.size, !w.isHeadLocked(i)
		} else if s.index > pos.Segment {
			st.next = s.index
			break
		}
	}
	return st
}

// Next returns the next record, blocking until one is durable, ctx ends
// (its error is returned) or the WAL is closed (ErrClosed). Corrupt data is
// skipped, counted and logged; it is never returned. Other errors are I/O
// errors; Next may be called again to retry.
func (r *Reader) Next(ctx context.Context) (Record, error) {
	for {
		st := r.w.state(r.pos)
		switch {
		case st.closed:
			return Record{}, ErrClosed
		case st.first >= 0 && r.pos.Segment < st.first:
			// Dropped by drop_oldest (or committed by another reader).
			r.pos = Position{Segment: st.first}
			continue
		case st.exists && r.pos.Offset < st.size:
			rec, ok, err := r.read(st.size)
			if err != nil {
				return Record{}, err
			}
			if ok {
				return rec, nil
			}
			continue
		case !st.exists && st.next >= 0,
			st.exists && st.sealed && st.next >= 0:
			r.pos = Position{Segment: st.next}
			continue
		}
		// About to wait: hold no file of a segment that has nothing more to
		// read. A released segment's space is freed only when its last
		// descriptor closes, and on a full disk that space is what lets the
		// writer go on.
		if r.f != nil && (!st.exists || st.sealed || r.fIdx != r.pos.Segment) {
			_ = r.Close()
		}
		select {
		case <-st.changed:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// read reads the record at r.pos below limit. It returns false without
// error when it skipped damaged or vanished data and the caller should look
// again.
func (r *Reader) read(limit int64) (Record, bool, error) {
	if err := r.open(r.pos.Segment); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if st := r.w.state(r.pos); st.exists {
				r.skip(&CorruptionError{Segment: r.pos.Segment, Offset: r.pos.Offset, Err: err}, st.size)
			}
			return Record{}, false, nil
		}
		return Record{}, false, err
	}
	rec, err := r.sc.read(r.pos.Offset, limit)
	if err == nil {
		r.pos = rec.Next
		return rec, true, nil
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		return Record{}, false, err
	}
	next, err := r.sc.resync(r.pos.Offset+1, limit)
	if err != nil {
		return Record{}, false, err
	}
	r.skip(ce, next)
	return Record{}, false, nil
}

// skip moves past damaged data up to offset to, counting and logging it
// once.
func (r *Reader) skip(ce *CorruptionError, to int64) {
	lost := to - r.pos.Offset
	r.w.m.corruptRecords.Inc()
	r.w.m.corruptBytes.Add(float64(lost))
	r.w.logger.Error("skipping corrupt wal data; records lost",
		"segment", ce.Segment, "offset", ce.Offset, "bytes", lost, "err", ce.Err)
	r.pos.Offset = to
}

// open makes sure the segment file idx is open for reading.
func (r *Reader) open(idx int) error {
	if r.f != nil && r.fIdx == idx {
		return nil
	}
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
	f, err := r.w.fs.OpenFile(r.w.segmentPath(idx), os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open segment %d: %w", idx, err)
	}
	r.f, r.fIdx = f, idx
	// A new segment: the read-ahead window is empty; the buffers and the
	// sharing mode stay.
	r.sc.r, r.sc.segment, r.sc.ra, r.sc.raOff = f, idx, nil, 0
	return nil
}

// Close releases the reader's file handle.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
