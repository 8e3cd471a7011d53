package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/ring"
)

// newRetro builds this ingester's retrospective job coordinator: with the
// governance store, it runs the jobs in the store's jobs/ prefix that the
// ring gives it (docs/retrospective.md); without one, nil (jobs run in the
// distributor that accepted them). The default backend is the first
// forwarding backend, as a distributor's.
// closeFn closes the store's bucket once the Manager has stopped.
func newRetro(cfg *config.IngesterConfig, backends []forward.BackendConfig, rg *ring.Ring, logger *slog.Logger, reg prometheus.Registerer) (m *retro.Manager, closeFn func() error, err error) {
	if !cfg.Governance.Enabled() {
		return nil, func() error { return nil }, nil
	}
	bkt, err := cfg.Governance.OpenBucket()
	if err != nil {
		return nil, nil, fmt.Errorf("retrospective: open governance store (%s): %w", cfg.Governance.Backend, err)
	}
	var url string
	if len(backends) > 0 {
		url = backends[0].URL
	}
	m, err = retro.NewManager(retro.ManagerDeps{
		Config:  cfg.Retrospective,
		Backend: cfg.Retrospective.DefaultBackend(url),
		Logger:  logger.With("component", "retrospective"),
		Store:   retro.NewBucketStore(bkt),
		Coordination: &retro.Coordination{
			Self:    rg.Self().Name,
			Owner:   retro.RingOwner(rg),
			Changed: rg.Changed,
		},
		Registerer: reg,
	})
	if err != nil {
		_ = bkt.Close()
		return nil, nil, err
	}
	return m, bkt.Close, nil
}
