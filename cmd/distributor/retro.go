package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/rules"
)

// newRetro builds the retrospective job manager: with the governance store,
// jobs read versions from it and are queued in its jobs/ prefix, where the
// ingester the ring chooses runs them; without one, they use the active
// rules and run in this process (docs/retrospective.md).
func newRetro(cfg *distributorconfig.Config, rulesMgr *rules.Manager, logger *slog.Logger, reg prometheus.Registerer) (*retro.Manager, error) {
	var src retro.RuleSource = retro.ActiveRules{Manager: rulesMgr}
	var jobs *retro.BucketStore
	if cfg.Governance.Enabled() {
		bkt, err := cfg.Governance.OpenBucket()
		if err != nil {
			return nil, fmt.Errorf("retrospective: open governance store (%s): %w", cfg.Governance.Backend, err)
		}
		src = retro.StoreRules{Store: govstore.New(bkt)}
		jobs = retro.NewBucketStore(bkt)
	}
	return retro.NewManager(retro.ManagerDeps{
		Config:     cfg.Retrospective,
		Backend:    cfg.Retrospective.DefaultBackend(cfg.Backend.URL),
		Rules:      src,
		Logger:     logger.With("component", "retrospective"),
		Registerer: reg,
		Store:      jobs,
	})
}
