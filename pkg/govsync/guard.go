package govsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/govstore"
)

// AutoRollbackAuthor is the author of the versions a Guard writes. The
// Guard never watches them (a rollback is not rolled back).
const AutoRollbackAuthor = "promgov:auto-rollback"

// DropMeter counts a distributor's samples: those of the valid series it
// received and those the governance (rules, drop_unused) dropped. Safe for
// concurrent use; both totals only grow.
type DropMeter interface {
	GovernanceDrops() (received, dropped uint64)
}

// Guard rolls back a newly active version that drops too much
// (govstore.AutoRollbackConfig): for Window after a version becomes active
// on this node, it compares the share of received samples the governance
// drops with the share the previous version dropped, and once MinSamples
// were received under the new version and the share rose by more than
// MaxDropShare, it writes the previous good version again as a new version
// (author AutoRollbackAuthor) and announces it. Several distributors may
// judge the same version; the store's If-Match lets only the first write.
//
// A nil *Guard (automatic rollback off) does nothing. Activated and Run
// may be called concurrently.
type Guard struct {
	cfg       govstore.AutoRollbackConfig
	meter     DropMeter
	store     *govstore.Store
	notify    func(uint64)
	logger    *slog.Logger
	interval  time.Duration
	now       func() time.Time
	rollbacks prometheus.Counter

	mu      sync.Mutex
	started bool     // the first activation (start-up) only sets last
	last    counters // at the last activation
	w       *watch   // the version being judged, nil when none
}

type counters struct{ received, dropped uint64 }

type watch struct {
	version  uint64
	until    time.Time
	at       counters
	baseline float64 // the previous version's dropped share (0 when unknown)
}

// NewGuard returns a Guard, or nil when cfg.MaxDropShare is 0 or there is
// no meter (ingesters drop nothing by rule). notify announces a version the
// Guard wrote (Syncer.Notify).
func NewGuard(cfg govstore.AutoRollbackConfig, meter DropMeter, store *govstore.Store, notify func(uint64), logger *slog.Logger, reg prometheus.Registerer) *Guard {
	if cfg.MaxDropShare <= 0 || meter == nil {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg, meter: meter, store: store, notify: notify, logger: logger, now: time.Now,
		interval: min(max(cfg.Window/20, time.Second), 10*time.Second),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "promgov_config_auto_rollbacks_total",
			Help: "Versions this distributor rolled back automatically because they dropped too large a share of samples (governance.auto_rollback)."}),
	}
	if reg != nil {
		reg.MustRegister(g.rollbacks)
	}
	return g
}

// Activated is Options.OnActive: v became active on this node. The version
// active at start-up is not judged (it ran before this process did), nor a
// version the Guard wrote.
func (g *Guard) Activated(v *govstore.Version) {
	if g == nil {
		return
	}
	r, d := g.meter.GovernanceDrops()
	now := counters{r, d}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.last
	g.last = now
	if !g.started {
		g.started = true
		return
	}
	g.w = nil
	if v.Author == AutoRollbackAuthor {
		return
	}
	w := &watch{version: v.Number, until: g.now().Add(g.cfg.Window), at: now}
	if n := now.received - prev.received; n >= g.cfg.MinSamples && n > 0 {
		w.baseline = float64(now.dropped-prev.dropped) / float64(n)
	}
	g.w = w
}

// Run judges the watched version every interval until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	if g == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			g.check(ctx)
		}
	}
}

// check judges the watched version once.
func (g *Guard) check(ctx context.Context) {
	g.mu.Lock()
	w := g.w
	g.mu.Unlock()
	if w == nil {
		return
	}
	if g.now().After(w.until) {
		g.clear(w) // judged for its window: it stays
		return
	}
	r, d := g.meter.GovernanceDrops()
	n := r - w.at.received
	if n >= g.cfg.MinSamples && n > 0 {
		if share := float64(d-w.at.dropped) / float64(n); share-w.baseline > g.cfg.MaxDropShare {
			g.rollback(ctx, w, share, n)
		}
	}
}

// clear stops judging w (unless another version is judged by now).
func (g *Guard) clear(w *watch) {
	g.mu.Lock()
	if g.w == w {
		g.w = nil
	}
	g.mu.Unlock()
}

func (g *Guard) rollback(ctx context.Context, w *watch, share float64, n uint64) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := g.store.Resolve(ctx)
	if err != nil {
		g.logger.Error("automatic rollback: governance store unreadable; retrying", "version", w.version, "err", err)
		return
	}
	if st.Active == nil || st.Active.Number != w.version {
		g.clear(w) // another version is active by now
		return
	}
	prev, err := g.store.PreviousGood(ctx)
	if err != nil {
		g.logger.Error("automatic rollback: no version to roll back to", "version", w.version, "err", err)
		g.clear(w)
		return
	}
	msg := fmt.Sprintf("automatic rollback of version %d to version %d: it dropped %.1f%% of %d samples received here, %.1f points over the %.1f%% before it (governance.auto_rollback.max_drop_share %g)",
		w.version, prev.Number, 100*share, n, 100*(share-w.baseline), 100*w.baseline, g.cfg.MaxDropShare)
	v, err := g.store.Write(ctx, govstore.WriteRequest{Body: []byte(prev.Body), IfMatch: st.Head, Author: AutoRollbackAuthor, Message: msg})
	var ce *govstore.ConflictError
	switch {
	case errors.As(err, &ce):
		g.logger.Info("automatic rollback: the store changed meanwhile (another distributor rolled back, or a new version); not rolling back",
			"version", w.version, "current", ce.Current.Number)
		g.clear(w)
	case err != nil:
		g.logger.Error("automatic rollback: cannot write the rollback version; retrying", "version", w.version, "err", err)
	default:
		g.rollbacks.Inc()
		g.logger.Warn("governance version rolled back automatically", "version", w.version, "rollback_version", v.Number, "to", prev.Number,
			"dropped_share", share, "baseline_share", w.baseline, "samples", n, "max_drop_share", g.cfg.MaxDropShare)
		g.clear(w)
		g.notify(v.Number)
	}
}
