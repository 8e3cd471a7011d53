package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/distributor"
	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/ui"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

// authRoutes is what each distributor route requires (docs/security.md):
// remote write needs write for the request's tenant, the analytics APIs
// read for theirs, a rules test (candidate rulesets) admin, and so do the
// UI's form for candidate aggregations; changing the governance
// configuration (the API and the UI's promote, reject and rollback, and
// proposing a suggestion) is an audited admin action, and so are starting,
// cancelling and resuming retrospective jobs (the API and the UI's forms); the query tap proxies a backend that holds every tenant,
// so it needs read for all.
func authRoutes() auth.Routes {
	rulesTest := auth.Access{Role: auth.RoleAdmin, Scope: auth.ScopeCluster, Action: "rules_test"}
	configChange := auth.Access{Role: auth.RoleAdmin, Scope: auth.ScopeCluster, Action: "config_change"}
	jobControl := auth.Access{Role: auth.RoleAdmin, Scope: auth.ScopeCluster, Action: "retrospective_job"}
	return append(append(auth.CommonRoutes(),
		auth.Route{Method: http.MethodPost, Path: distributor.WritePath, Access: auth.Access{Role: auth.RoleWrite, Scope: auth.ScopeWriteTenant}},
		auth.Route{Method: http.MethodPost, Path: rules.PathTest, Access: rulesTest},
		auth.Route{Method: http.MethodPost, Path: ui.PathAggregation, Access: rulesTest},
		auth.Route{Method: http.MethodPut, Path: govapi.PathConfig, Access: configChange},
		auth.Route{Method: http.MethodPost, Path: govapi.PathVersions + "/", Access: configChange},
		auth.Route{Method: http.MethodPost, Path: govapi.PathRollback, Access: configChange},
		auth.Route{Method: http.MethodPost, Path: ui.PathConfigPromote, Access: configChange},
		auth.Route{Method: http.MethodPost, Path: ui.PathConfigRollback, Access: configChange},
		auth.Route{Method: http.MethodPost, Path: ui.PathConfigReject, Access: configChange},
		auth.Route{Method: http.MethodPost, Path: web.APIPrefix + "/suggestions/", Access: configChange},
		auth.Route{Method: http.MethodPost, Path: ui.PathSuggestions + "/", Access: configChange},
		auth.Route{Method: http.MethodPost, Path: retro.PathJobs + "/", Access: jobControl},
		// An openmetrics job's output holds every tenant's samples.
		auth.Route{Method: http.MethodGet, Path: retro.PathOpenMetrics, Access: auth.Access{Role: auth.RoleAdmin, Scope: auth.ScopeCluster, Action: "retrospective_export"}},
		auth.Route{Method: http.MethodPost, Path: ui.PathJobs + "/", Access: jobControl},
		auth.Route{Method: http.MethodGet, Path: cardinality.PathPrefix, Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeReadTenant}},
		auth.Route{Method: http.MethodGet, Path: usage.PathPrefix, Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeReadTenant}},
		auth.Route{Method: http.MethodPost, Path: web.LegacyAPIPrefix + "/", Access: auth.Access{Role: auth.RoleRead, Scope: auth.ScopeCluster}},
	),
		// The UI pages of one tenant (the usage and rules pages are the cluster's).
		auth.TenantPages(ui.PathOverview, ui.PathOffenders, ui.PathMetric, ui.PathStatic)...)
}

// newAuth returns the middleware enforcing the identities (none:
// authorisation off).
func newAuth(cfg *distributorconfig.Config, logger *slog.Logger, reg prometheus.Registerer) (*auth.Middleware, error) {
	return auth.Setup(cfg.Auth, cfg.Web.ConfigFile, auth.Options{
		Routes: authRoutes(), TenantHeader: cfg.Distributor.RemoteWrite.TenantHeader, Logger: logger.With("component", "auth"), Registerer: reg,
	})
}

// healthyDistributors counts the ACTIVE distributors in the ring, this one
// included: the per-tenant rate limits are divided among them.
func healthyDistributors(rg *ring.Ring) int {
	n := 0
	for _, m := range rg.Members() {
		if m.Role == ring.RoleDistributor && m.State == ring.StateActive {
			n++
		}
	}
	return max(n, 1)
}
