package plugin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the counters of every plugin loaded with it. Create it once
// per process (NewMetrics) and pass it to each Load so that reloads keep the
// same series; Forget a plugin a reload removed. Labels are bounded: the
// plugin name (from the configuration) and a closed set of outcomes and
// kinds. A nil *Metrics counts nothing.
type Metrics struct {
	calls     *prometheus.CounterVec
	series    *prometheus.CounterVec
	errors    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	instances *prometheus.CounterVec
}

// NewMetrics creates the plugin metrics and registers them with reg (which
// may be nil: then they are not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_plugin_calls_total",
			Help: "Batches evaluated by a WebAssembly plugin, by plugin and outcome (ok or error).",
		}, []string{"plugin", "outcome"}),
		series: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_plugin_series_total",
			Help: "Series sent to a WebAssembly plugin, by plugin.",
		}, []string{"plugin"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_plugin_errors_total",
			Help: "WebAssembly plugin failures (at load or per batch), by plugin and kind.",
		}, []string{"plugin", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promgov_plugin_call_duration_seconds",
			Help:    "Time to evaluate one batch in a WebAssembly plugin, waiting for an instance included.",
			Buckets: []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1},
		}, []string{"plugin"}),
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_plugin_instances_started_total",
			Help: "WebAssembly plugin instances started (at load, for concurrency, and to replace one that failed), by plugin.",
		}, []string{"plugin"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.series, m.errors, m.duration, m.instances)
	}
	return m
}

// Forget deletes the series of plugin, after a reload removed it.
func (m *Metrics) Forget(plugin string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"plugin": plugin}
	m.calls.DeletePartialMatch(l)
	m.series.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.instances.DeletePartialMatch(l)
}

// pluginMetrics are one plugin's children, resolved once at Load.
type pluginMetrics struct {
	m         *Metrics
	name      string
	ok, fail  prometheus.Counter
	series    prometheus.Counter
	duration  prometheus.Observer
	instances prometheus.Counter
}

func (m *Metrics) forPlugin(name string) pluginMetrics {
	if m == nil {
		return pluginMetrics{}
	}
	return pluginMetrics{
		m:         m,
		name:      name,
		ok:        m.calls.WithLabelValues(name, "ok"),
		fail:      m.calls.WithLabelValues(name, "error"),
		series:    m.series.WithLabelValues(name),
		duration:  m.duration.WithLabelValues(name),
		instances: m.instances.WithLabelValues(name),
	}
}

// call records one batch of n series.
func (pm pluginMetrics) call(n int, took time.Duration, kind Kind) {
	if pm.m == nil {
		return
	}
	pm.series.Add(float64(n))
	pm.duration.Observe(took.Seconds())
	if kind == "" {
		pm.ok.Inc()
		return
	}
	pm.fail.Inc()
	pm.m.errors.WithLabelValues(pm.name, string(kind)).Inc()
}

// loadFailed counts a failed Load.
func (m *Metrics) loadFailed(name string, kind Kind) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(name, string(kind)).Inc()
}

// started counts an instance started.
func (pm pluginMetrics) started() {
	if pm.instances != nil {
		pm.instances.Inc()
	}
}
