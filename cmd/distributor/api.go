package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

// apiDeps are what the distributor's HTTP APIs read.
type apiDeps struct {
	rules *rules.Manager
	// aggregations are the ingesters' aggregation rules, as the rules test
	// API shows them (replaced on every reload).
	aggregations *aggregate.Describer
	// cardinality is the cluster-wide cardinality API: every ingester
	// answers over the gRPC connections the distributor pushes on, merged
	// by sketch union.
	cardinality cardinality.Source
	// aggregation is the cluster-wide aggregation API: every ingester's
	// rows (as received, as written), merged.
	aggregation aggregate.StatsSource
	// preview is the cluster-wide impact preview: every ingester's answer
	// from its reservoir.
	preview preview.Cluster
	// dropUnused is the usage drop policy, which previews a candidate's
	// usage.drop_unused.
	dropUnused preview.DropUnused
	usage      usage.Reader
	// outbox receives what the query tap records.
	outbox *usage.AccessStats
}

// mountAPI mounts promgov's own APIs under web.APIPrefix, the query tap on
// the Prometheus read API paths when a query backend is configured, and,
// for one release, redirects from the paths promgov's APIs had under
// /api/v1 that are not the Prometheus API's (GET /api/v1/rules is the
// backend's when the tap is mounted).
func mountAPI(mux *http.ServeMux, cfg *distributorconfig.Config, d apiDeps, logger *slog.Logger, reg prometheus.Registerer) error {
	rw := cfg.Distributor.RemoteWrite
	mux.Handle("POST "+rules.PathTest, rules.TestHandlerWithAggregations(d.rules, d.aggregations, logger))
	mux.Handle("GET "+rules.PathRules, rules.RulesHandler(d.rules))
	mux.Handle("GET "+cardinality.PathPrefix, cardinality.NewHandler(d.cardinality, rw.TenantHeader, logger))
	mux.Handle("GET "+aggregate.PathMetrics, aggregate.Handler(d.aggregation, rw.TenantHeader))
	mux.Handle("POST "+preview.Path, preview.Handler(preview.HandlerDeps{Cluster: d.preview, Rules: d.rules, DropUnused: d.dropUnused,
		TenantHeader: rw.TenantHeader, Logger: logger}))
	mux.Handle("GET "+usage.PathPrefix, usage.NewAPI(d.usage, rw.TenantHeader))
	tapped, err := mountQueryTap(mux, cfg.Usage, rw, d.outbox, logger, reg)
	if err != nil {
		return err
	}
	legacy := []string{"POST " + rules.PathTest, "GET " + cardinality.PathPrefix, "GET " + usage.PathPrefix, "GET " + ring.PathStatus}
	if !tapped {
		legacy = append(legacy, "GET "+rules.PathRules)
	}
	web.RedirectLegacy(mux, logger, legacy...)
	return nil
}

// setAggregations gives the rules test API the ingesters' aggregation
// rules (the shared file's aggregations: at the start and on every reload,
// or the active governance version's); none when they are invalid (the
// ingesters refuse them, and the distributor does not fail for a section
// it only shows).
func setAggregations(d *aggregate.Describer, rs []aggregate.RuleConfig, logger *slog.Logger) {
	if err := d.Set(rs); err != nil {
		logger.Warn("aggregations: invalid, not shown by the rules test API", "err", err)
	}
}
