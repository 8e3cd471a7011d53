package distributor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/promgov/promgov/pkg/usage"
)

// DropPolicy decides, per metric name, whether the usage drop policy
// (usage.drop_unused) drops a series. It is consulted once per series after
// the governance rules, on the series' final metric name. Implementations
// must be safe for concurrent use and cheap (it runs on the write path).
type DropPolicy interface {
	Check(metric string) usage.Verdict
}

var _ DropPolicy = (*usage.Policy)(nil)

// usageStats summarises what the usage drop policy dropped in one request.
type usageStats struct {
	dropped, droppedSamples, droppedHistograms, droppedExemplars int
}

// count records one dropped series.
func (st *usageStats) count(c counts) {
	st.dropped++
	st.droppedSamples += c.samples
	st.droppedHistograms += c.histograms
	st.droppedExemplars += c.exemplars
}

// newUsageDropped returns the counter of series dropped by the usage policy.
func newUsageDropped(reg prometheus.Registerer) prometheus.Counter {
	return promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "promgov_distributor_usage_dropped_series_total",
		Help: "Series dropped by the usage drop policy (usage.drop_unused in enforce mode); counted as written.",
	})
}

// dropUnused reports whether gov's drop policy drops a series named name,
// and counts it if so.
func (gov *governance) dropUnused(name string, c counts) bool {
	if gov.drop == nil || !gov.drop.Check(name).Drop {
		return false
	}
	gov.usage.count(c)
	return true
}
