package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/rules"
)

// newRetro builds the retrospective job manager: jobs read versions from the
// governance store when there is one, the active rules otherwise, and run in
// this process (docs/retrospective.md).
func newRetro(cfg *distributorconfig.Config, rulesMgr *rules.Manager, logger *slog.Logger, reg prometheus.Registerer) (*retro.Manager, error) {
	var src retro.RuleSource = retro.ActiveRules{Manager: rulesMgr}
	if cfg.Governance.Enabled() {
		st, err := cfg.Governance.Open()
		if err != nil {
			return nil, err
		}
		src = retro.StoreRules{Store: st}
	}
	return retro.NewManager(retro.ManagerDeps{
		Config:     cfg.Retrospective,
		Backend:    cfg.Retrospective.DefaultBackend(cfg.Backend.URL),
		Rules:      src,
		Logger:     logger.With("component", "retrospective"),
		Registerer: reg,
	})
}
