package aggregate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Log appends a batch of output entries of one tenant durably (the
// ingester's WAL). Safe for concurrent use; an error means nothing was
// appended.
type Log interface {
	AppendBatch(ctx context.Context, tenant string, batch []byte) error
}

// Service drives an Engine: every Tick it closes the intervals that are
// due, snapshots the state, then appends the outputs to the Log. Run blocks
// until its context ends, then writes a final snapshot.
//
// Order and what it guarantees: the snapshot of a close is written before
// its outputs are appended, so a crash (kill -9) between them loses those
// output points but never lets a counter output go backwards or count an
// interval twice: the restored total already holds them and the next
// interval's point carries them. Samples taken after the last snapshot are
// lost from the state, but every input keeps its base from the snapshot, so
// the next sample of each counter input carries the increase again (exact
// totals) unless the input reset meanwhile. See docs/aggregation.md.
type Service struct {
	e      *Engine
	path   string
	log    Log
	owns   Owns
	logger *slog.Logger
	now    func() time.Time
	tick   time.Duration

	pending   []Output // outputs not yet appended (the Log failed)
	snapshots *prometheus.CounterVec
	appended  *prometheus.CounterVec
}

// maxPending bounds the outputs kept while the Log fails.
const maxPending = 10_000

// NewService builds the driver of e. path is the snapshot file ("": none);
// owns may be nil. reg and logger may be nil.
func NewService(e *Engine, path string, log Log, owns Owns, logger *slog.Logger, reg prometheus.Registerer) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(reg)
	return &Service{
		e: e, path: path, log: log, owns: owns, logger: logger, now: time.Now, tick: time.Second,
		snapshots: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_snapshots_total",
			Help: "Aggregation state snapshots written, by result.",
		}, []string{"result"}),
		appended: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_output_appends_total",
			Help: "Appends of aggregation outputs to the WAL, by result.",
		}, []string{"result"}),
	}
}

// Restore loads the snapshot file, if any, into the engine. Call it before
// pushes are taken.
func (s *Service) Restore() error {
	if s.path == "" {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read aggregation snapshot: %w", err)
	}
	if err := s.e.Restore(b); err != nil {
		// A corrupt snapshot must not stop the ingester: start empty.
		s.logger.Error("aggregation snapshot unreadable; starting without aggregation state (counter outputs restart from 0)", "path", s.path, "err", err)
		return nil
	}
	return nil
}

// Run closes intervals every tick until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := s.writeSnapshot(); err != nil {
				s.logger.Error("final aggregation snapshot failed", "err", err)
			}
			return nil
		case <-t.C:
			s.Flush(ctx)
		}
	}
}

// Flush closes what is due, snapshots and appends the outputs (and those a
// previous Flush could not append).
func (s *Service) Flush(ctx context.Context) {
	outs := s.e.Close(s.now(), s.owns)
	if len(outs) > 0 {
		if err := s.writeSnapshot(); err != nil {
			s.logger.Error("aggregation snapshot failed", "err", err)
		}
		s.pending = append(s.pending, outs...)
	}
	for len(s.pending) > 0 {
		o := s.pending[0]
		if err := s.log.AppendBatch(ctx, o.Tenant, o.Batch); err != nil {
			s.appended.WithLabelValues("failure").Inc()
			s.logger.Warn("appending aggregation outputs to the WAL failed; retrying at the next tick", "tenant", o.Tenant, "err", err)
			break
		}
		s.appended.WithLabelValues("success").Inc()
		s.pending = s.pending[1:]
	}
	if n := len(s.pending) - maxPending; n > 0 {
		s.logger.Error("dropping aggregation outputs the WAL did not take", "batches", n)
		s.pending = s.pending[n:]
	}
}

// writeSnapshot writes the state atomically (temporary file, fsync,
// rename).
func (s *Service) writeSnapshot() error {
	if s.path == "" {
		return nil
	}
	b, err := s.e.Snapshot()
	if err == nil {
		err = writeFileAtomic(s.path, b)
	}
	if err != nil {
		s.snapshots.WithLabelValues("failure").Inc()
		return err
	}
	s.snapshots.WithLabelValues("success").Inc()
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
