package main

import (
	"log/slog"
	"net/http"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

// analyticsAPI is the ingester's read-only analytics API under
// web.APIPrefix: its cardinality state and the query statistics of the
// metrics it owns, in JSON on the web port (distributors ask the cluster
// service instead).
func analyticsAPI(tracker *cardinality.Tracker, access *usage.AccessStats, tenantHeader string, logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET "+cardinality.PathPrefix, cardinality.NewHandler(tracker, tenantHeader, logger))
	mux.Handle("GET "+usage.PathAccess, usage.AccessHandler(access, tenantHeader))
	return mux
}

// mountAPI mounts the analytics API on the web mux and, for one release,
// redirects from the paths promgov's APIs had under /api/v1.
func mountAPI(mux *http.ServeMux, analytics http.Handler, logger *slog.Logger) {
	mux.Handle("GET "+cardinality.PathPrefix, analytics)
	mux.Handle("GET "+usage.PathAccess, analytics)
	web.RedirectLegacy(mux, logger, "GET "+cardinality.PathPrefix, "GET "+usage.PathAccess, "GET "+ring.PathStatus)
}
