package aggregate

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/promgov/promgov/pkg/web"
)

// PathMetrics is the ingester's aggregation API: per rule and input
// metric, the series received and the series written.
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
	var out []MetricStats
	for _, r := range e.rules {
		idx := map[[2]string]int{}
		r.mu.Lock()
		for _, g := range r.groups {
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
	slices.SortStableFunc(out, func(a, b MetricStats) int { return cmp.Compare(b.InputSeries, a.InputSeries) })
	return out
}

// Handler serves PathMetrics from e.
func Handler(e *Engine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rows := e.Stats()
		if rows == nil {
			rows = []MetricStats{}
		}
		web.WriteJSON(w, rows)
	})
}
