package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/promgov/promgov/pkg/wal"
)

// Log is the part of the write-ahead log the WALForwarder consumes. The
// WAL's methods are safe for concurrent use; the WALForwarder calls
// NewReader once and Commit from one goroutine at a time.
type Log interface {
	// NewReader returns a reader starting at from.
	NewReader(from wal.Position) *wal.Reader
	// Checkpoint is where replay starts: everything before it was acknowledged.
	Checkpoint() wal.Position
	// Commit declares everything before pos acknowledged by the backend.
	Commit(pos wal.Position) error
}

var _ Log = (*wal.WAL)(nil)

// WALForwarder sends what the ingester wrote to the WAL. It reads records
// in order from the checkpoint, decodes them (see EncodeRecord), hands them
// to a Forwarder's shards (per-series order, batching, concurrency, retries)
// and, every Config.CheckpointInterval, commits the end of the longest
// prefix of records whose every part the backend acknowledged or rejected
// as non-recoverable. Undecodable records are counted and skipped.
//
// Config.MaxPendingSamples bounds how many samples the reader holds in
// memory ahead of the backend; when reached the reader waits, and the data
// waits on disk (the WAL's own bounds then apply backpressure to pushes).
type WALForwarder struct {
	cfg    Config
	log    Log
	fwd    *Forwarder
	tr     *tracker
	logger *slog.Logger

	commitFailures prometheus.Counter
	badRecords     prometheus.Counter
	tenants        map[string]bool // nil: every tenant
	relabel        *relabeler      // nil: no write_relabel_configs
	checkpointMu   sync.Mutex
	committed      wal.Position
}

// NewWALForwarder returns a WALForwarder reading from log and sending
// through sender. logger may be nil; reg may be nil (no registration).
func NewWALForwarder(cfg Config, log Log, sender Sender, logger *slog.Logger, reg prometheus.Registerer) (*WALForwarder, error) {
	if log == nil {
		return nil, errors.New("forward: wal must not be nil")
	}
	fwd, err := NewForwarder(cfg, sender, logger, reg)
	if err != nil {
		return nil, err
	}
	tr := &tracker{}
	fwd.tr, fwd.durable = tr, true
	f := promauto.With(reg)
	return &WALForwarder{
		cfg: cfg, log: log, fwd: fwd, tr: tr, logger: fwd.logger,
		commitFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_checkpoint_failures_total",
			Help: "Failed attempts to persist the WAL checkpoint (retried at the next interval).",
		}),
		badRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_undecodable_records_total",
			Help: "WAL records with a valid checksum that could not be decoded; skipped.",
		}),
	}, nil
}

// routeTenants restricts the forwarder to the data of tenants (none: all).
// Records of other tenants are passed over and count as settled.
func (w *WALForwarder) routeTenants(tenants []string) {
	if len(tenants) == 0 {
		w.tenants = nil
		return
	}
	w.tenants = make(map[string]bool, len(tenants))
	for _, t := range tenants {
		w.tenants[t] = true
	}
}

// Run reads and sends until ctx is done, then stops reading, lets the
// Forwarder flush within Config.FlushDeadline, commits what the backend
// acknowledged and returns. Unsent records stay in the WAL for the next
// start. The caller closes the WAL after Run returned.
func (w *WALForwarder) Run(ctx context.Context) error {
	start := w.log.Checkpoint()
	w.committed = start
	r := w.log.NewReader(start)
	// Each record is copied into the shards' pending requests before the
	// next is read (read), so the reader may lend its buffers.
	r.SharePayloads()
	defer func() { _ = r.Close() }()
	w.logger.Info("forwarding from the WAL", "checkpoint", start.String())

	fwdCtx, stopFwd := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFwd()
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- w.fwd.Run(fwdCtx) }()
	commitStop, commitDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(commitDone)
		t := time.NewTicker(w.cfg.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.commit()
			case <-commitStop:
				return
			}
		}
	}()

	readErr := w.read(ctx, r)
	stopFwd()
	fwdErr := <-fwdDone
	close(commitStop)
	<-commitDone
	w.commit()
	w.logger.Info("forwarder stopped", "checkpoint", w.checkpoint().String(), "unsettled_records", w.tr.outstanding())
	return errors.Join(readErr, fwdErr)
}

// read hands records to the Forwarder until ctx is done or the WAL closed.
func (w *WALForwarder) read(ctx context.Context, r *wal.Reader) error {
	var ioErrs int
	for {
		rec, err := r.Next(ctx)
		switch {
		case err == nil:
			ioErrs = 0
		case ctx.Err() != nil, errors.Is(err, wal.ErrClosed):
			return nil
		default:
			// An I/O error reading a segment: retry with backoff, log once
			// per failure streak.
			if ioErrs == 0 {
				w.logger.Error("reading the WAL failed; retrying", "position", r.Position().String(), "err", err)
			}
			t := time.NewTimer(w.fwd.gate.policy.delay(ioErrs, 0))
			ioErrs++
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		seq := w.tr.add(rec.Next)
		if rec.Type != wal.RecordBatch {
			w.skip(rec, fmt.Errorf("unknown record type %d", rec.Type))
			w.tr.release(seq)
			continue
		}
		b, err := readRecord(rec.Payload)
		if err != nil {
			w.skip(rec, err)
			w.tr.release(seq)
			continue
		}
		if w.tenants != nil && !w.tenants[b.tenant] {
			w.tr.release(seq) // another backend's tenant
			continue
		}
		if w.relabel != nil && !w.relabel.apply(&b) {
			w.tr.release(seq) // every series dropped for this backend
			continue
		}
		if err := w.fwd.appendRecord(ctx, &b, seq); err != nil {
			return nil // ctx done; the record stays uncommitted
		}
		w.tr.release(seq)
	}
}

// skip counts and logs a record that cannot be sent. Such records are rare
// (the ingester validates before appending), so each is logged.
func (w *WALForwarder) skip(rec wal.Record, err error) {
	w.badRecords.Inc()
	w.logger.Warn("skipping undecodable WAL record", "position", rec.Pos.String(), "bytes", len(rec.Payload), "err", err)
}

// commit persists the settled prefix if it moved.
func (w *WALForwarder) commit() {
	pos, ok := w.tr.settled()
	w.checkpointMu.Lock()
	defer w.checkpointMu.Unlock()
	if !ok || !w.committed.Before(pos) {
		return
	}
	if err := w.log.Commit(pos); err != nil {
		w.commitFailures.Inc()
		w.logger.Warn("persisting the WAL checkpoint failed; retrying at the next interval", "position", pos.String(), "err", err)
		return
	}
	w.committed = pos
}

// checkpoint is the last committed position.
func (w *WALForwarder) checkpoint() wal.Position {
	w.checkpointMu.Lock()
	defer w.checkpointMu.Unlock()
	return w.committed
}
