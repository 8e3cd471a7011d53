package retro

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// states are the job states, the values of promgov_retrospective_jobs'
// state label.
var states = []string{StateQueued, StatePlanning, StateRunning, StatePaused, StateCancelled, StateSucceeded, StateFailed}

// metrics are a Manager's counters; the jobs gauge is collected from the
// jobs themselves (jobsCollector).
type metrics struct {
	samples *prometheus.CounterVec // op: read, written
	series  *prometheus.CounterVec // op: done, deleted
	batches *prometheus.CounterVec // result: done, failed
	removed prometheus.Counter     // ended jobs removed past their retention
}

func newMetrics(reg prometheus.Registerer, m *Manager) *metrics {
	f := promauto.With(reg)
	mt := &metrics{
		samples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_retrospective_samples_total",
			Help: "Samples retrospective jobs read from and wrote to the backend (op: read, written).",
		}, []string{"op"}),
		series: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_retrospective_series_total",
			Help: "Series retrospective jobs finished (op: done: copied and verified, or only deleted when a rule drops them) and originals they deleted (op: deleted).",
		}, []string{"op"}),
		batches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_retrospective_batches_total",
			Help: "Batches of retrospective jobs by result: done (checkpointed) or failed (the job paused).",
		}, []string{"result"}),
		removed: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_retrospective_jobs_removed_total",
			Help: "Ended retrospective jobs this node removed, with their plan and output, past --retrospective.retention.",
		}),
	}
	for _, op := range []string{"read", "written"} {
		mt.samples.WithLabelValues(op)
	}
	for _, op := range []string{"done", "deleted"} {
		mt.series.WithLabelValues(op)
	}
	for _, r := range []string{"done", "failed"} {
		mt.batches.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(jobsCollector{m})
	}
	return mt
}

// batchDone counts a checkpointed batch.
func (mt *metrics) batchDone(r batchResult) {
	mt.batches.WithLabelValues("done").Inc()
	mt.samples.WithLabelValues("read").Add(float64(r.read))
	mt.samples.WithLabelValues("written").Add(float64(r.written))
	mt.series.WithLabelValues("done").Add(float64(r.series))
	mt.series.WithLabelValues("deleted").Add(float64(r.deleted))
}

var jobsDesc = prometheus.NewDesc("promgov_retrospective_jobs",
	"Retrospective jobs this node holds, by state.", []string{"state"}, nil)

// jobsCollector exports the number of jobs in each state at scrape time.
type jobsCollector struct{ m *Manager }

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	n := map[string]int{}
	c.m.mu.Lock()
	for _, j := range c.m.jobs {
		n[j.State]++
	}
	c.m.mu.Unlock()
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n[s]), s)
	}
}
