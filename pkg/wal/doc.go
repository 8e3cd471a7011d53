// Package wal is promgov's durable, segmented, append-only write-ahead log.
//
// An ingester appends every accepted batch (the marshalled Push request,
// see RecordBatch) with [WAL.Append] and acknowledges the push only after Append has
// returned: from then on the batch survives a process kill. The forwarder
// reads records in order with a [Reader] starting at [WAL.Checkpoint], sends
// them to the storage backend and calls [WAL.Commit] with the position up to
// which the backend has acknowledged. The checkpoint is persisted atomically;
// segments that lie entirely before it are deleted. On start, [Open] repairs
// a torn tail and replay begins at the persisted checkpoint, so everything
// not yet acknowledged by the backend is sent again (at-least-once delivery:
// a batch may be re-sent after a crash, never lost).
//
// # Wiring
//
//	w, err := wal.Open(cfg, nil, logger, reg) // once per ingester
//	// push path: acknowledge only after Append returned nil
//	_, err = w.Append(ctx, wal.RecordBatch, batchBytes)
//	// errors.Is(err, wal.ErrFull): refuse with 429 / Retry-After
//	// forwarder:
//	r := w.NewReader(w.Checkpoint())
//	rec, err := r.Next(ctx) // blocks until a record is durable
//	// ... send rec.Payload; once the backend acknowledged it and every
//	// record before it:
//	err = w.Commit(rec.Next)
//	// shutdown: stop the forwarder and pushes, then w.Close(ctx)
//
// With several senders in flight, commit only the end of the longest
// acknowledged prefix: Commit(p) declares everything before p delivered.
//
// # Layout on disk
//
// The directory holds segment files named by their zero-padded decimal index
// ("00000001", "00000002", ...) and a checkpoint file ("checkpoint"). A
// segment is a plain concatenation of records; a new segment is started when
// the next record would make the current one exceed Config.SegmentSize, and
// on every Open (the previous last segment is sealed after repair, unless it
// is empty).
//
// With Config.Preallocate (the default) the head segment's file runs ahead
// of its records: zeros are written a few megabytes at a time before the
// records overwrite them, so that an fsync finds the blocks and the file
// size already durable and flushes data only. A segment is cut back to
// its records when it is sealed and on Close, so sealed segments hold
// exactly their records; the zeros a crash leaves at the end of the last
// segment are trimmed by Open without being counted as damage.
//
// Records are made durable with File.Datasync (fdatasync on Linux), which
// leaves out the timestamps every write changes; the checkpoint,
// truncations and directories are fsynced.
//
// # Record format
//
// All integers are little-endian. CRCs are CRC-32 with the Castagnoli
// polynomial (CRC32-C).
//
//	offset  size  field
//	0       4     length   payload length in bytes
//	4       4     crc      CRC32-C over type byte followed by the payload
//	8       1     type     RecordType, never 0
//	9       4     hcrc     CRC32-C over bytes 0..8 (header guard)
//	13      len   payload
//
// The header guard lets a reader find the next record after a damaged region
// cheaply (scan forward byte by byte until a header verifies, then check the
// payload CRC) without trusting a corrupted length field.
//
// # Damage handling
//
//   - Torn tail: a crash in the middle of a write leaves an incomplete or
//     invalid record at the end of the last segment. Open truncates the last
//     segment after its last valid record when no valid record follows, and
//     logs the segment, offset and number of bytes removed. A tail of zeros
//     alone is preallocated space, not a torn record: it is trimmed and
//     logged at info level, not counted.
//   - Corruption in the middle (a bit flip, a lost sector): a Reader that
//     meets an invalid record scans forward to the next valid record, or to
//     the end of the segment and on to the next one. Each skipped region is
//     counted in promgov_wal_corrupt_records_total (and its size in
//     promgov_wal_corrupt_bytes_total) and logged once with segment and
//     offset. Forwarding never stalls on it.
//   - Write or fsync errors: the records of the failed group are not
//     acknowledged (Append returns the error), the segment is truncated back
//     to its last durable size and abandoned, and the next append starts a new
//     segment. Readers never see records that were not acknowledged.
//   - Disk full (ENOSPC, EDQUOT) is reported as ErrFull, i.e. backpressure:
//     the caller refuses the push with a retryable answer and the sender
//     keeps the data. The WAL gets out of it on its own once the forwarder
//     has drained the backlog: a segment sealed at its committed end is
//     released even when it is the only one (on commit, after a failed
//     write and on Open), the checkpoint file exists from Open on and is
//     overwritten in place when the disk has no room for a new one, and a
//     reader waiting for new records holds no descriptor of a finished
//     segment, so its space is really freed.
//
// # Sync policies
//
//   - "always": every record is written and fsynced on its own before its
//     Append returns. Nothing acknowledged is lost even on power loss; the
//     slowest policy (one fsync per record).
//   - "group" (default): concurrent appends are collected while the previous
//     fsync runs, and a group waits (at most Config.GroupCommitDelay) for
//     the appends announced with WAL.Expect and until GroupCommitDelay has
//     passed since the previous fsync began; they are written with one
//     write and one fsync (group commit).
//     Same guarantee as "always" (every Append returns only after its record
//     was fsynced) at a fraction of the fsyncs.
//   - "interval": Append returns once the record has been written to the
//     operating system; a background loop fsyncs every Config.SyncInterval
//     (and on segment rotation and Close). A killed process loses nothing
//     (the page cache survives), but a kernel crash or power loss can lose
//     up to SyncInterval of acknowledged data.
//
// # Bounds and overflow
//
// Config.MaxSizeBytes bounds the bytes on disk and Config.MaxAge the age of
// the oldest record not yet committed. With the "backpressure" policy
// (default) an Append that would exceed a bound fails with ErrFull until the
// forwarder commits and segments are deleted. With "drop_oldest" the oldest
// sealed segments are deleted (counted in
// promgov_wal_overflow_dropped_segments_total and ..._bytes_total, and
// logged) to make room; readers positioned in a dropped segment continue at
// the next remaining one. The age of recovered data is approximated by the
// segment file's modification time; the active segment is never dropped by
// age.
//
// # Metrics
//
// promgov_wal_size_bytes, promgov_wal_segments,
// promgov_wal_fsync_duration_seconds, promgov_wal_fsync_failures_total,
// promgov_wal_group_commit_records, promgov_wal_appended_records_total,
// promgov_wal_appended_bytes_total, promgov_wal_append_failures_total{reason},
// promgov_wal_overflow_dropped_segments_total,
// promgov_wal_overflow_dropped_bytes_total, promgov_wal_corrupt_records_total,
// promgov_wal_corrupt_bytes_total, promgov_wal_torn_tail_truncated_bytes_total
// and promgov_wal_oldest_uncommitted_age_seconds.
package wal
