package preview

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/usage"
)

// AutoProposeAuthor is the author of the versions an AutoProposer writes.
const AutoProposeAuthor = "promgov:auto-propose"

// AutoProposer proposes suggestions on an interval
// (govstore.AutoProposeConfig): the suggestions of the enabled kinds that
// save enough and were never proposed (by anyone: pending, promoted or
// rejected) become proposals, the biggest saving first. It never
// promotes: a proposal runs in shadow until a person approves or rejects
// it. Every distributor may run one; the store's If-Match lets one of
// them write a given version, and the next interval sees it proposed.
type AutoProposer struct {
	cfg      govstore.AutoProposeConfig
	proposer *Proposer // and its usage reader and store
	logger   *slog.Logger
	runs     *prometheus.CounterVec
}

// NewAutoProposer returns an AutoProposer, or nil when cfg is off. A nil
// *AutoProposer's Run waits for its context.
func NewAutoProposer(cfg govstore.AutoProposeConfig, p *Proposer, logger *slog.Logger, reg prometheus.Registerer) *AutoProposer {
	if !cfg.Enabled() {
		return nil
	}
	return &AutoProposer{
		cfg: cfg, proposer: p, logger: logger,
		runs: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_config_auto_proposals_total",
			Help: "Suggestions governance.auto_propose tried to propose, by result (proposed, conflict: another distributor wrote first, error).",
		}, []string{"result"}),
	}
}

// Run proposes every interval until ctx ends.
func (a *AutoProposer) Run(ctx context.Context) error {
	if a == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.RunOnce(ctx)
		}
	}
}

// RunOnce proposes what is due now and returns the versions it wrote.
func (a *AutoProposer) RunOnce(ctx context.Context) []uint64 {
	rep := a.proposer.d.Usage.Report()
	if rep == nil {
		return nil // not classified yet
	}
	metas, _, err := a.proposer.d.Store.List(ctx)
	if err != nil {
		a.runs.WithLabelValues("error").Inc()
		a.logger.Warn("auto-propose: cannot list the versions", "err", err)
		return nil
	}
	done := ProposedIDs(metas)
	var wrote []uint64
	for _, s := range usage.Suggest(rep) { // the biggest saving first
		if len(wrote) == a.cfg.MaxPerRun {
			break
		}
		if !slices.Contains(a.cfg.Kinds, s.Kind) || s.SeriesSaved < a.cfg.MinSeriesSaved || done[s.ID] {
			continue
		}
		p, err := a.proposer.Propose(ctx, &s, AutoProposeAuthor)
		var ce *govstore.ConflictError
		switch {
		case errors.As(err, &ce):
			// Another distributor wrote meanwhile; the next run sees
			// what it proposed.
			a.runs.WithLabelValues("conflict").Inc()
			return wrote
		case err != nil:
			a.runs.WithLabelValues("error").Inc()
			a.logger.Warn("auto-propose: suggestion not proposed", "suggestion", s.ID, "kind", s.Kind, "err", err)
			continue
		}
		a.runs.WithLabelValues("proposed").Inc()
		a.logger.Info("auto-propose: suggestion proposed", "suggestion", s.ID, "kind", s.Kind, "version", p.Version.Number,
			"series_saved", s.SeriesSaved)
		wrote = append(wrote, p.Version.Number)
	}
	return wrote
}
