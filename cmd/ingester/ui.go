package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/ui"
)

// mountUI mounts the node status API (distributors ask the same status over
// the GetNodeStatus RPC) and, unless
// --ui.enabled=false, the web UI at / (this ingester's own view). It
// returns the UI's history sampler to run, nil without the UI.
func mountUI(mux *http.ServeMux, cfg *config.IngesterConfig, node string, tracker *cardinality.Tracker, g prometheus.Gatherer, logger *slog.Logger) (*ui.History, error) {
	mux.Handle("GET "+ui.PathNodeStatus, ui.NodeStatusHandler(g, node, ui.RoleIngester))
	if !cfg.UI.Enabled {
		return nil, nil
	}
	hist := ui.NewHistory(cfg.UI, tracker, g, logger.With("component", "ui"))
	u, err := ui.New(ui.Deps{
		Role: ui.RoleIngester, Node: node, API: mux, TenantHeader: cfg.TenantHeader(), Scope: auth.RequestScope,
		Gatherer: g, Cardinality: tracker, History: hist, Logger: logger.With("component", "ui"),
	})
	if err != nil {
		return nil, err
	}
	u.Register(mux)
	return hist, nil
}
