package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/ui"
	"github.com/promgov/promgov/pkg/usage"
)

// uiDeps are what the distributor's UI reads besides its mux.
type uiDeps struct {
	ring        *ring.Ring
	clients     ui.Clients
	cardinality cardinality.Source
	usage       usage.Reader
	gatherer    prometheus.Gatherer
	// governance: the governance store's API is mounted (the
	// configuration versions pages read it).
	governance bool
	// auth says which actions a page's viewer may take.
	auth *auth.Middleware
}

// mountUI mounts the node status API and, unless --ui.enabled=false, the
// web UI at / (the cluster's view: every ingester's health over the GetNodeStatus
// RPC). It returns the UI's history sampler to run, nil without the UI.
func mountUI(mux *http.ServeMux, cfg *distributorconfig.Config, d uiDeps, logger *slog.Logger) (*ui.History, error) {
	self := d.ring.Self().Name
	mux.Handle("GET "+ui.PathNodeStatus, ui.NodeStatusHandler(d.gatherer, self, ui.RoleDistributor))
	if !cfg.UI.Enabled {
		return nil, nil
	}
	hist := ui.NewHistory(cfg.UI, d.cardinality, d.gatherer, logger.With("component", "ui"))
	u, err := ui.New(ui.Deps{
		Role: ui.RoleDistributor, Node: self, API: mux, TenantHeader: cfg.Distributor.RemoteWrite.TenantHeader, Scope: auth.RequestScope,
		Governance: d.governance, Permits: d.auth.Permits,
		Gatherer: d.gatherer, Cardinality: d.cardinality, Usage: d.usage, History: hist, Logger: logger.With("component", "ui"),
		Nodes: &ui.ClusterNodes{Members: d.ring, Clients: d.clients, Timeout: cfg.Cluster.QueryTimeout},
	})
	if err != nil {
		return nil, err
	}
	u.Register(mux)
	return hist, nil
}
