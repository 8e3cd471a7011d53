package main

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/cluster"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/tap"
)

// clusterCosts adapts the cluster-wide cardinality fan-out to
// usage.CostSource: every metric the ingesters track, its series and
// samples/s summed over tenants. A failed fan-out answers no metrics, which
// classifies nothing and so drops nothing (fail safe). Safe for concurrent use.
type clusterCosts struct {
	src     cardinality.Source
	timeout time.Duration
	logger  *slog.Logger
}

var _ usage.CostSource = (*clusterCosts)(nil)

// MetricCosts implements usage.CostSource.
func (c *clusterCosts) MetricCosts() []usage.MetricCost {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.src.Metrics(ctx, cardinality.Query{Limit: -1})
	if err != nil {
		c.logger.Warn("usage: cardinality fan-out failed; no metric costs this round", "err", err)
		return nil
	}
	byName := map[string]*usage.MetricCost{}
	for _, r := range rows {
		mc := byName[r.Name]
		if mc == nil {
			mc = &usage.MetricCost{Name: r.Name}
			byName[r.Name] = mc
		}
		mc.Series += r.Series
		mc.SamplesRate += r.SamplesRate
	}
	out := make([]usage.MetricCost, 0, len(byName))
	for _, mc := range byName {
		out = append(out, *mc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// clusterAccess adapts the query statistics fan-out to usage.AccessSource:
// what every ingester holds for the metrics it owns, plus what this
// distributor recorded and has not shipped yet. An ingester that does not
// answer makes the answer incomplete, and the error blocks dropping. Safe
// for concurrent use.
type clusterAccess struct {
	fanOut *cluster.FanOut
	outbox *usage.AccessStats
}

var _ usage.AccessSource = (*clusterAccess)(nil)

// AccessSnapshot implements usage.AccessSource.
func (c *clusterAccess) AccessSnapshot(ctx context.Context) (usage.AccessSnapshot, error) {
	snap, err := c.fanOut.Access(ctx)
	merged := usage.NewAccessStats(math.MaxInt, math.MaxInt)
	merged.Merge(snap)
	merged.Merge(c.outbox.Snapshot())
	return merged.Snapshot(), err
}

// mountUsage mounts the usage API and, when a backend URL is configured,
// the query tap on the Prometheus read API paths; the tap records into
// outbox under the request's tenant.
func mountUsage(mux *http.ServeMux, cfg usage.Config, rw remotewrite.Config, mgr *usage.Manager, outbox *usage.AccessStats,
	logger *slog.Logger, reg prometheus.Registerer) error {
	mux.Handle("GET /api/v1/usage/", usage.NewAPI(mgr))
	if cfg.Queries.BackendURL == "" {
		return nil
	}
	backend, err := url.Parse(cfg.Queries.BackendURL)
	if err != nil {
		return err // validated by config already
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
		return err
	}
	for _, p := range []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/{name}/values"} {
		mux.Handle(p, t)
	}
	return nil
}
