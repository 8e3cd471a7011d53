package aggregate

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/promgov/promgov/pkg/web"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// PathMetrics is the aggregation API: per rule and input metric, the series
// received and the series written. An ingester answers for the metrics it
// owns; a distributor answers for the cluster, merging every ingester's
// rows (cluster.FanOut.Aggregation). ?tenant= restricts it to one tenant.
const PathMetrics = web.APIPrefix + "/aggregation/metrics"

// MetricStats is one row of PathMetrics: a (rule, tenant, input metric) as
// received (input series holding state) and as written (output series).
type MetricStats struct {
	Rule         string `json:"rule"`
	Tenant       string `json:"tenant"`
	Metric       string `json:"metric"`
	InputSeries  int    `json:"input_series"`
	OutputSeries int    `json:"output_series"`
}

// Stats returns a row per (rule, tenant, input metric), sorted by input
// series, largest first. Safe for concurrent use.
func (e *Engine) Stats() []MetricStats {
	return e.StatsOf("")
}

// StatsOf is Stats restricted to one tenant; empty is every tenant. Safe
// for concurrent use.
func (e *Engine) StatsOf(tenant string) []MetricStats {
	var out []MetricStats
	for _, r := range e.set.Load().all() {
		idx := map[[2]string]int{}
		r.mu.Lock()
		for _, g := range r.groups {
			if tenant != "" && g.tenant != tenant {
				continue
			}
			k := [2]string{g.tenant, g.metric}
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, MetricStats{Rule: r.cfg.Name, Tenant: g.tenant, Metric: g.metric})
			}
			out[i].InputSeries += len(g.inputs)
			out[i].OutputSeries += len(g.out)
		}
		r.mu.Unlock()
	}
	sortStats(out)
	return out
}

// MergeStats merges the rows of several ingesters into one row per (rule,
// tenant, input metric), sorted like Stats. Each metric has one owner, so
// rows rarely meet; when they do (a metric moving between owners holds
// state on both until the handoff forgets the old owner's), their series
// are added: the series the cluster holds.
func MergeStats(parts [][]MetricStats) []MetricStats {
	var out []MetricStats
	idx := map[[3]string]int{}
	for _, rows := range parts {
		for _, s := range rows {
			k := [3]string{s.Rule, s.Tenant, s.Metric}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				out = append(out, s)
				continue
			}
			out[i].InputSeries += s.InputSeries
			out[i].OutputSeries += s.OutputSeries
		}
	}
	sortStats(out)
	return out
}

func sortStats(rows []MetricStats) {
	slices.SortStableFunc(rows, func(a, b MetricStats) int {
		if c := cmp.Compare(b.InputSeries, a.InputSeries); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Metric, b.Metric))
	})
}

// StatsSource answers the rows of one tenant (empty: every tenant). It must
// be safe for concurrent use.
type StatsSource func(ctx context.Context, tenant string) ([]MetricStats, error)

// EngineStats is e as a StatsSource (the ingester's own rows).
func EngineStats(e *Engine) StatsSource {
	return func(_ context.Context, tenant string) ([]MetricStats, error) { return e.StatsOf(tenant), nil }
}

// Handler serves PathMetrics from src for the tenant the request asks
// about (web.RequestTenant: the tenant parameter or the header named
// tenantHeader): 400 when they disagree, 503 when src timed out, 500 on any
// other failure.
func Handler(src StatsSource, tenantHeader string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, err := web.RequestTenant(r, tenantHeader)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		rows, err := src(r.Context(), tenant)
		if err != nil {
			status, typ := http.StatusInternalServerError, "internal"
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				status, typ = http.StatusServiceUnavailable, "timeout"
			}
			web.WriteError(w, status, typ, err)
			return
		}
		if rows == nil {
			rows = []MetricStats{}
		}
		web.WriteJSON(w, rows)
	})
}

// StatsToProto is rows as the cluster service answers them
// (QueryAggregation).
func StatsToProto(rows []MetricStats) []*ingesterv1.AggregationStats {
	out := make([]*ingesterv1.AggregationStats, len(rows))
	for i, s := range rows {
		out[i] = &ingesterv1.AggregationStats{Rule: s.Rule, Tenant: s.Tenant, Metric: s.Metric,
			InputSeries: uint64(s.InputSeries), OutputSeries: uint64(s.OutputSeries)}
	}
	return out
}

// StatsFromProto is the inverse of StatsToProto.
func StatsFromProto(rows []*ingesterv1.AggregationStats) []MetricStats {
	out := make([]MetricStats, len(rows))
	for i, s := range rows {
		out[i] = MetricStats{Rule: s.GetRule(), Tenant: s.GetTenant(), Metric: s.GetMetric(),
			InputSeries: int(s.GetInputSeries()), OutputSeries: int(s.GetOutputSeries())}
	}
	return out
}
