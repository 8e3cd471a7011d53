package distributor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

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
		Help: "Series dropped by the usage drop policy (the usage.drop_unused rule in enforce mode); counted as written.",
	})
}
