package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors returned by the WAL; check them with errors.Is.
var (
	// ErrFull means a bound (max_size_bytes, max_age) is reached under the
	// backpressure policy, or the disk is full. It is retryable: refuse the
	// push (HTTP 429) and let the sender keep the data.
	ErrFull = errors.New("wal full")
	// ErrClosed is returned by calls on a closed WAL.
	ErrClosed = errors.New("wal closed")
	// ErrRecordTooLarge is returned for a record larger than a segment; it
	// is not retryable.
	ErrRecordTooLarge = errors.New("wal record larger than segment_size_bytes")
	// ErrInvalidPosition is returned by Commit for a position past the end
	// of the log.
	ErrInvalidPosition = errors.New("position past the end of the wal")
)

// maxAgeMarks bounds the in-memory index used to compute record ages.
const maxAgeMarks = 4096

// segment is one segment file known to the WAL.
type segment struct {
	index int
	// size is the number of bytes readers may read: acknowledged records
	// only.
	size int64
}

// ageMark says that the records ending at end were appended at t or later
// (and after the previous mark).
type ageMark struct {
	end Position
	t   time.Time
}

// WAL is a segmented write-ahead log. Append, Commit, Checkpoint and
// NewReader are safe for concurrent use.
type WAL struct {
	cfg    Config
	fs     FS
	logger *slog.Logger
	m      *metrics
	now    func() time.Time

	gatherTimer *time.Timer // the writer's GroupCommitDelay timer
	lastSync    time.Time   // when the writer's last group fsync began (pacing)

	// expected counts appends announced with Expect and not yet queued:
	// a group waits for them.
	expected atomic.Int64

	shrinkStep int64 // shrinkSegments' step: shrinkStep, smaller in tests

	// qmu guards the append queue.
	qmu       sync.Mutex
	queue     []*request
	accepting bool
	wake      chan struct{}

	// mu guards the log state below.
	mu         sync.Mutex
	segs       []segment // ascending by index; the last one is the head if headOpen
	headOpen   bool
	diskSize   int64
	checkpoint Position
	marks      []ageMark
	notify     chan struct{} // closed and replaced whenever readers may progress
	closed     bool
	nextIndex  int

	// commitMu serialises Commit calls.
	commitMu sync.Mutex

	// Owned by the writer goroutine.
	head     File
	headIdx  int
	headSize int64
	dirty    bool       // written but not fsynced (interval policy)
	buf      []byte     // encoded records of the group not yet written
	written  int64      // bytes of the group written but not yet fsynced
	group    []*request // requests of the group
	failures int        // consecutive failed writes, for log rate limiting
	zeroed   int64      // the head's bytes preallocated with zeros (Config.Preallocate)
	// noPrealloc: writing zeros failed in this head; go on without.
	noPrealloc bool
	zeros      []byte // a chunk of zeros for preallocation, allocated on first use

	reqPool sync.Pool
	stop    chan struct{}
	done    chan struct{}
}

// Open opens or creates the WAL in cfg.Dir, repairs a torn tail and starts
// the writer. fsys nil means the operating system; logger nil discards
// logs; reg nil registers no metrics. Call Close to stop it.
func Open(cfg Config, fsys FS, logger *slog.Logger, reg prometheus.Registerer) (*WAL, error) {
	return open(cfg, fsys, logger, reg, time.Now)
}

// open is Open with an injectable clock.
func open(cfg Config, fsys FS, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*WAL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fsys == nil {
		fsys = OSFS{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &WAL{
		cfg:        cfg,
		fs:         fsys,
		logger:     logger.With("component", "wal", "dir", cfg.Dir),
		now:        now,
		wake:       make(chan struct{}, 1),
		notify:     make(chan struct{}),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		shrinkStep: shrinkStep,
	}
	w.reqPool.New = func() any { return &request{done: make(chan struct{}, 1)} }
	w.m = newMetrics(w.oldestAgeSeconds)
	if err := fsys.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	if err := w.recover(); err != nil {
		return nil, err
	}
	if err := w.m.register(reg); err != nil {
		if w.head != nil {
			_ = w.head.Close()
		}
		return nil, err
	}
	w.accepting = true
	go w.run()
	return w, nil
}

// segmentPath returns the file name of segment index.
func (w *WAL) segmentPath(index int) string {
	return filepath.Join(w.cfg.Dir, fmt.Sprintf("%08d", index))
}

// parseSegmentName returns the index of a segment file name.
func parseSegmentName(name string) (int, bool) {
	if len(name) < 8 {
		return 0, false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(name)
	return i, err == nil
}

// recovered is a segment found on disk.
type recovered struct {
	segment
	mod time.Time
}

// recover loads the segments and checkpoint, deletes committed segments,
// repairs the tail and reuses an empty last segment as the head.
func (w *WAL) recover() error {
	entries, err := w.fs.ReadDir(w.cfg.Dir)
	if err != nil {
		return fmt.Errorf("list wal dir: %w", err)
	}
	var found []recovered
	for _, e := range entries {
		if e.Name() == checkpointTmpName {
			_ = w.fs.Remove(filepath.Join(w.cfg.Dir, e.Name()))
			continue
		}
		idx, ok := parseSegmentName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat segment %d: %w", idx, err)
		}
		found = append(found, recovered{segment: segment{index: idx, size: info.Size()}, mod: info.ModTime()})
	}
	slices.SortFunc(found, func(a, b recovered) int { return a.index - b.index })

	cp, ok, err := readCheckpoint(w.fs, w.cfg.Dir)
	if errors.Is(err, errBadCheckpoint) {
		w.logger.Warn("ignoring invalid wal checkpoint; replaying every segment", "err", err)
	} else if err != nil {
		return err
	}
	if len(found) > 0 && (!ok || cp.Segment < found[0].index) {
		cp = Position{Segment: found[0].index}
	}
	var removed int
	for len(found) > 0 && found[0].index < cp.Segment {
		if err := w.fs.Remove(w.segmentPath(found[0].index)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove committed segment %d: %w", found[0].index, err)
		}
		found = found[1:]
		removed++
	}
	if removed > 0 {
		w.logger.Info("removed committed wal segments", "segments", removed)
	}

	// Repair the tail: the last non-empty segment (a crash right after a
	// rotation leaves an empty last segment).
	for i := len(found) - 1; i >= 0 && i >= len(found)-2; i-- {
		if found[i].size == 0 {
			continue
		}
		size, err := w.repair(found[i].index, found[i].size)
		if err != nil {
			return err
		}
		found[i].size = size
		break
	}

	if len(found) == 0 {
		w.nextIndex = max(cp.Segment, 1)
		if cp.Offset > 0 {
			w.nextIndex = cp.Segment + 1
		}
		cp = Position{Segment: w.nextIndex}
	} else {
		last := found[len(found)-1]
		w.nextIndex = last.index + 1
		if cp.Segment == last.index && cp.Offset > last.size {
			cp.Offset = last.size
		}
	}
	w.checkpoint = cp
	for _, s := range found {
		w.segs = append(w.segs, s.segment)
		w.diskSize += s.size
		if s.size > 0 {
			w.marks = append(w.marks, ageMark{end: Position{Segment: s.index, Offset: s.size}, t: s.mod})
		}
	}
	w.pruneMarksLocked()
	// A last segment whose end was committed before the restart would
	// otherwise stay on disk until the next commit, which may never come.
	w.removeSegments(w.releaseCommittedLocked())

	// Reuse an empty last segment as the head; otherwise the first append
	// starts a new one.
	if n := len(w.segs); n > 0 && w.segs[n-1].size == 0 {
		last := w.segs[n-1].index
		// Not O_APPEND: preallocation writes zeros past the data with
		// WriteAt, which O_APPEND would turn into appends. The file is
		// empty, so writes start at its end.
		f, err := w.fs.OpenFile(w.segmentPath(last), os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("open segment %d: %w", last, err)
		}
		w.head, w.headIdx, w.headSize, w.headOpen = f, last, 0, true
	}
	if !ok {
		// The checkpoint file exists from the start so that a commit on a
		// full disk can overwrite it in place (see writeCheckpoint).
		if err := writeCheckpoint(w.fs, w.cfg.Dir, w.checkpoint); err != nil {
			w.logger.Warn("write initial wal checkpoint; the first commit writes it", "err", err)
		}
	}
	w.updateSizeMetricsLocked()
	w.logger.Info("wal opened", "segments", len(w.segs), "bytes", w.diskSize, "checkpoint", w.checkpoint.String())
	return nil
}

// repair scans segment index and truncates a torn tail: invalid data after
// which no valid record follows. It returns the valid size.
func (w *WAL) repair(index int, size int64) (int64, error) {
	f, err := w.fs.OpenFile(w.segmentPath(index), os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open segment %d for repair: %w", index, err)
	}
	defer f.Close()
	sc := segmentScanner{r: f, segment: index}
	for off := int64(0); off < size; {
		rec, err := sc.read(off, size)
		if err == nil {
			off = rec.Next.Offset
			continue
		}
		if !isCorruption(err) {
			return 0, fmt.Errorf("repair segment %d: %w", index, err)
		}
		if zero, err := zeroFrom(f, off, size); err != nil {
			return 0, fmt.Errorf("repair segment %d: %w", index, err)
		} else if zero {
			// Preallocated space a crash left untrimmed: not damage.
			if err := truncateSync(f, off); err != nil {
				return 0, fmt.Errorf("trim preallocated tail of segment %d at %d: %w", index, off, err)
			}
			w.logger.Info("trimmed preallocated wal tail", "segment", index, "offset", off, "bytes", size-off)
			return off, nil
		}
		next, err := sc.resync(off+1, size)
		if err != nil {
			return 0, fmt.Errorf("repair segment %d: %w", index, err)
		}
		if next < size {
			// Damage in the middle: readers skip and count it.
			off = next
			continue
		}
		if err := truncateSync(f, off); err != nil {
			return 0, fmt.Errorf("truncate torn tail of segment %d at %d: %w", index, off, err)
		}
		w.m.truncatedBytes.Add(float64(size - off))
		w.logger.Warn("truncated torn wal tail", "segment", index, "offset", off, "bytes", size-off)
		return off, nil
	}
	return size, nil
}

// zeroFrom reports whether the bytes of f from off to size are all zero.
func zeroFrom(f File, off, size int64) (bool, error) {
	buf := make([]byte, min(resyncChunk, size-off))
	for off < size {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}

// truncateSync cuts f to size and fsyncs it.
func truncateSync(f File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// Checkpoint returns the position up to which records are committed; a
// reader that should replay everything unsent starts there.
func (w *WAL) Checkpoint() Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checkpoint
}

// Commit records that every record before pos has been acknowledged by the
// backend: the checkpoint is persisted atomically (write, fsync, rename,
// fsync of the directory) before Commit returns, and segments that lie
// entirely before pos are deleted. Positions at or before the current
// checkpoint are ignored. Pass Record.Next of the last acknowledged record.
// A stale checkpoint after a crash only means re-sending, so callers may
// commit less often than once per record.
func (w *WAL) Commit(pos Position) error {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()

	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if !w.checkpoint.Before(pos) {
		w.mu.Unlock()
		return nil
	}
	if end := w.endLocked(); end.Before(pos) {
		w.mu.Unlock()
		return fmt.Errorf("commit %s: %w (log ends at %s)", pos, ErrInvalidPosition, end)
	}
	pos = w.normalizeLocked(pos)
	w.mu.Unlock()

	err := writeCheckpoint(w.fs, w.cfg.Dir, pos)
	if err != nil && !isDiskFull(err) {
		return fmt.Errorf("commit %s: %w", pos, err)
	}
	// On a full disk the checkpoint itself may not fit. The backend has
	// acknowledged everything before pos, so the segments wholly before it
	// may go before the checkpoint is durable (a crash then replays from the
	// first remaining segment, which lies after what was delivered); removing
	// them is what makes room for the checkpoint.
	w.mu.Lock()
	if w.checkpoint.Before(pos) {
		w.checkpoint = pos
	}
	victims := w.releaseCommittedLocked()
	w.pruneMarksLocked()
	w.mu.Unlock()
	w.shrinkSegments(victims)
	w.removeSegments(victims)

	if err != nil {
		if err := writeCheckpoint(w.fs, w.cfg.Dir, pos); err != nil {
			return fmt.Errorf("commit %s: %w", pos, err)
		}
	}
	return nil
}

// releaseCommittedLocked takes every sealed segment the checkpoint has
// wholly passed out of the log, including the last one: a segment that was
// sealed at its committed end (by a rotation, a failed write or a restart)
// holds nothing unsent, and keeping it would keep its disk space taken for
// as long as no new record arrives, which a full disk prevents. The
// checkpoint then moves to the start of the next segment, existing or not.
// The caller deletes the returned segments' files with removeSegments.
func (w *WAL) releaseCommittedLocked() []segment {
	var victims []segment
	for len(w.segs) > 0 && !w.isHeadLocked(0) {
		s := w.segs[0]
		passed := s.index < w.checkpoint.Segment ||
			(s.index == w.checkpoint.Segment && w.checkpoint.Offset >= s.size)
		if !passed {
			break
		}
		victims = append(victims, s)
		w.diskSize -= s.size
		w.segs = w.segs[1:]
	}
	if len(victims) > 0 {
		w.afterRemovalLocked()
	}
	return victims
}

// afterRemovalLocked moves the checkpoint past segments just taken out of
// the front of the log, to the start of the first remaining segment or of
// the next one to be created, and publishes the change.
func (w *WAL) afterRemovalLocked() {
	next := Position{Segment: w.nextIndex}
	if len(w.segs) > 0 {
		next = Position{Segment: w.segs[0].index}
	}
	if w.checkpoint.Before(next) {
		w.checkpoint = next
	}
	w.pruneMarksLocked()
	w.updateSizeMetricsLocked()
	w.signalLocked()
}

// shrinkStep is how many bytes of a committed segment one filesystem
// transaction frees (shrinkSegments).
const shrinkStep = 8 << 20

// shrinkSegments cuts the files of segments Commit released, shrinkStep
// bytes at a time with an fsync after each cut, before removeSegments
// deletes them. Freeing a whole segment at once makes one large filesystem
// journal commit, and the head's fsyncs wait for it: on ext4 mounted with
// discard, every 64 MiB segment removed stalled the appends' fsyncs for
// 22-27 ms (one removal every 2 s at 200k samples/s). Each fsync here
// commits one step's freed blocks alone, so an append's fsync waits for one
// step at most. A failed step is logged; the removal that follows frees the
// rest. The segments hold only acknowledged data, so a crash part way
// through loses nothing: Open removes what the checkpoint has passed.
func (w *WAL) shrinkSegments(victims []segment) {
	for _, s := range victims {
		if err := w.shrink(s); err != nil {
			w.logger.Debug("shrink committed wal segment before removal", "segment", s.index, "err", err)
		}
	}
}

// shrink cuts segment s down to at most shrinkStep bytes in steps.
func (w *WAL) shrink(s segment) error {
	step := w.shrinkStep
	if s.size <= step {
		return nil
	}
	f, err := w.fs.OpenFile(w.segmentPath(s.index), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for size := s.size - step; size > 0; size -= step {
		if err = truncateSync(f, size); err != nil {
			break
		}
	}
	return errors.Join(err, f.Close())
}

// removeSegments deletes the files of segments released from the log.
func (w *WAL) removeSegments(victims []segment) {
	for _, s := range victims {
		if err := w.fs.Remove(w.segmentPath(s.index)); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Nothing in it is unsent; the file is removed on the next Open.
			w.logger.Warn("remove committed wal segment", "segment", s.index, "err", err)
		}
	}
}

// Close stops accepting appends, writes and syncs what is queued, closes
// the head segment and makes readers return ErrClosed. If ctx ends first,
// Close returns its error while the writer finishes in the background.
func (w *WAL) Close(ctx context.Context) error {
	w.qmu.Lock()
	wasAccepting := w.accepting
	w.accepting = false
	w.qmu.Unlock()
	if wasAccepting {
		close(w.stop)
	}
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		err = fmt.Errorf("close wal: %w", ctx.Err())
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.notify)
	}
	w.mu.Unlock()
	return err
}

// isHeadLocked reports whether w.segs[i] is the open head segment.
func (w *WAL) isHeadLocked(i int) bool {
	return w.headOpen && i == len(w.segs)-1
}

// endLocked returns the end of the readable log.
func (w *WAL) endLocked() Position {
	if n := len(w.segs); n > 0 {
		return Position{Segment: w.segs[n-1].index, Offset: w.segs[n-1].size}
	}
	return w.checkpoint
}

// normalizeLocked moves a position at the end of a sealed segment to the
// start of the next segment, so that the sealed segment can be deleted.
func (w *WAL) normalizeLocked(pos Position) Position {
	for i, s := range w.segs {
		if s.index < pos.Segment {
			continue
		}
		if s.index > pos.Segment || w.isHeadLocked(i) || pos.Offset < s.size {
			break
		}
		if i+1 < len(w.segs) {
			pos = Position{Segment: w.segs[i+1].index}
		}
	}
	return pos
}

// pruneMarksLocked forgets age marks of committed records.
func (w *WAL) pruneMarksLocked() {
	i := 0
	for i < len(w.marks) && !w.checkpoint.Before(w.marks[i].end) {
		i++
	}
	w.marks = w.marks[i:]
}

// addMarkLocked records that records up to end were appended at t.
func (w *WAL) addMarkLocked(end Position, t time.Time) {
	gran := time.Second
	if w.cfg.MaxAge > 0 {
		gran = max(gran, w.cfg.MaxAge/512)
	}
	if n := len(w.marks); n > 0 && w.marks[n-1].end.Segment == end.Segment && t.Sub(w.marks[n-1].t) < gran {
		w.marks[n-1].end = end
		return
	}
	w.marks = append(w.marks, ageMark{end: end, t: t})
	if len(w.marks) > maxAgeMarks {
		// Merge the two oldest marks, keeping the older time: ages are
		// overestimated, never underestimated.
		w.marks[1].t = w.marks[0].t
		w.marks = w.marks[1:]
	}
}

// oldestAgeLocked returns the age of the oldest uncommitted record.
func (w *WAL) oldestAgeLocked(now time.Time) time.Duration {
	if len(w.marks) == 0 {
		return 0
	}
	return max(now.Sub(w.marks[0].t), 0)
}

// oldestAgeSeconds feeds promgov_wal_oldest_uncommitted_age_seconds.
func (w *WAL) oldestAgeSeconds() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oldestAgeLocked(w.now()).Seconds()
}

// updateSizeMetricsLocked publishes size and segment count.
func (w *WAL) updateSizeMetricsLocked() {
	w.m.sizeBytes.Set(float64(w.diskSize))
	w.m.segments.Set(float64(len(w.segs)))
}

// signalLocked wakes readers waiting for data.
func (w *WAL) signalLocked() {
	if w.closed {
		return
	}
	close(w.notify)
	w.notify = make(chan struct{})
}
