package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/usage"
)

// authRoutes is what each ingester route requires (docs/security.md): the
// analytics APIs read for the request's tenant; everything else is the
// common table (probes open, reload and profiles admin, other reads need
// read for every tenant).
func authRoutes() auth.Routes {
	return append(auth.CommonRoutes(),
		auth.Route{Method: http.MethodGet, Path: cardinality.PathPrefix, Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeReadTenant}},
		auth.Route{Method: http.MethodGet, Path: usage.PathAccess, Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeReadTenant}},
	)
}

// newAuth loads the identities (none: authorisation off) and returns the
// middleware that enforces them.
func newAuth(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (*auth.Middleware, error) {
	policy, err := auth.Load(cfg.Auth, cfg.Web.ConfigFile)
	if err != nil {
		return nil, err
	}
	if policy == nil {
		logger.Warn("authorisation is OFF: anyone who reaches the HTTP port may read every tenant and reload; set --auth.config-file (docs/security.md)")
	}
	return auth.NewMiddleware(policy, auth.Options{
		Routes:       authRoutes(),
		TenantHeader: tenantHeader(cfg),
		Logger:       logger.With("component", "auth"),
		Registerer:   reg,
	}), nil
}
