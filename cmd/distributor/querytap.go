package main

import (
	"log/slog"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/tap"
)

// mountQueryTap mounts the query tap on the Prometheus read API paths
// (tap.Routes) when a query backend URL is configured, and reports whether
// it did. The tap records into outbox under the request's tenant.
func mountQueryTap(mux *http.ServeMux, cfg usage.Config, rw remotewrite.Config, outbox *usage.AccessStats,
	logger *slog.Logger, reg prometheus.Registerer) (bool, error) {
	if cfg.Queries.BackendURL == "" {
		return false, nil
	}
	backend, err := url.Parse(cfg.Queries.BackendURL)
	if err != nil {
		return false, err // validated by config already
	}
	t, err := tap.New(tap.Options{
		Backend:       backend,
		UserHeader:    cfg.Queries.UserHeader,
		TenantHeader:  rw.TenantHeader,
		DefaultTenant: rw.DefaultTenant,
		Recorder:      outbox,
		Logger:        logger,
		Registerer:    reg,
	})
	if err != nil {
		return false, err
	}
	for _, p := range tap.Routes() {
		mux.Handle(p, t)
	}
	return true, nil
}
