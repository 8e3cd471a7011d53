package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/ui"
	"github.com/promgov/promgov/pkg/usage"
)

// authRoutes is what each ingester route requires (docs/security.md): the
// analytics APIs read for the request's tenant; everything else is the
// common table (probes open, reload and profiles admin, other reads need
// read for every tenant).
func authRoutes() auth.Routes {
	return append(append(auth.CommonRoutes(),
		auth.Route{Method: http.MethodGet, Path: cardinality.PathPrefix, Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeReadTenant}},
		auth.Route{Method: http.MethodGet, Path: usage.PathAccess, Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeReadTenant}},
	),
		// The UI pages of one tenant (the usage and rules pages are the cluster's).
		auth.TenantPages(ui.PathOverview, ui.PathOffenders, ui.PathMetric, ui.PathStatic)...)
}

// newAuth returns the middleware enforcing the identities (none:
// authorisation off).
func newAuth(cfg *config.IngesterConfig, logger *slog.Logger, reg prometheus.Registerer) (*auth.Middleware, error) {
	return auth.Setup(cfg.Auth, cfg.Web.ConfigFile, auth.Options{
		Routes: authRoutes(), TenantHeader: cfg.TenantHeader(), Logger: logger.With("component", "auth"), Registerer: reg,
	})
}
