package rules

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/plugin"
)

// Metrics holds the per-rule counters shared by every Engine compiled with
// it. Create it once per process (NewMetrics) and pass it to each Compile so
// that reloads keep the same series. A nil *Metrics counts nothing.
type Metrics struct {
	series      *prometheus.CounterVec
	typeUnknown *prometheus.CounterVec
	invalidVec  *prometheus.CounterVec
	plugins     *plugin.Metrics
}

// NewMetrics creates the rule counters and registers them with reg (which
// may be nil: then they are not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		series: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_rule_series_total",
			Help: "Series a rule acted on (or, with mode=shadow, would have acted on), by rule, action and mode.",
		}, []string{"rule", "action", "mode"}),
		typeUnknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_rule_type_unknown_total",
			Help: "Series for which a rule's type-dependent checks were skipped because the metric type was unknown.",
		}, []string{"rule"}),
		invalidVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_rule_invalid_series_dropped_total",
			Help: "Series dropped because rules left them invalid (no or invalid name, invalid label), by the last rule that changed them.",
		}, []string{"rule"}),
	}
	if reg != nil {
		reg.MustRegister(m.series, m.typeUnknown, m.invalidVec)
	}
	m.plugins = plugin.NewMetrics(reg)
	return m
}

// pluginMetrics returns the plugin metrics (nil for a nil m).
func (m *Metrics) pluginMetrics() *plugin.Metrics {
	if m == nil {
		return nil
	}
	return m.plugins
}

// invalid counts a series dropped as invalid after rule.
func (m *Metrics) invalid(rule string) {
	if m == nil {
		return
	}
	m.invalidVec.WithLabelValues(rule).Inc()
}

// invalidN is invalid n times.
func (m *Metrics) invalidN(rule string, n int) {
	if m == nil {
		return
	}
	m.invalidVec.WithLabelValues(rule).Add(float64(n))
}

// forgetExcept deletes the series of rules not in keep, so removed rules do
// not linger after a reload.
func (m *Metrics) forgetExcept(old, keep []*rule) {
	if m == nil {
		return
	}
	names := make(map[string]struct{}, len(keep))
	for _, r := range keep {
		names[r.name] = struct{}{}
	}
	for _, r := range old {
		if _, ok := names[r.name]; ok {
			continue
		}
		l := prometheus.Labels{"rule": r.name}
		m.series.DeletePartialMatch(l)
		m.typeUnknown.DeletePartialMatch(l)
		m.invalidVec.DeletePartialMatch(l)
	}
}

// counter is a possibly absent counter.
type counter struct{ c prometheus.Counter }

func (c counter) inc() {
	if c.c != nil {
		c.c.Inc()
	}
}

func (c counter) add(n int) {
	if c.c != nil {
		c.c.Add(float64(n))
	}
}

// ruleMetrics are one rule's counters, resolved at compile time so that the
// hot path does no label lookups.
type ruleMetrics struct {
	series      [4]counter // indexed by actionIndex
	typeUnknown counter
}

// actionIndex maps an action to its ruleMetrics.series slot.
func actionIndex(a Action) int {
	switch a {
	case ActionDrop:
		return 0
	case ActionRewrite:
		return 1
	case ActionTag:
		return 2
	default:
		return 3
	}
}

// forRule resolves the counters of one rule for the actions it can take
// (only those are exported, so a rule shows zeroes for what it can do).
func (m *Metrics) forRule(name string, mode Mode, actions ...Action) ruleMetrics {
	var rm ruleMetrics
	if m == nil {
		return rm
	}
	for _, a := range actions {
		rm.series[actionIndex(a)] = counter{m.series.WithLabelValues(name, string(a), string(mode))}
	}
	rm.typeUnknown = counter{m.typeUnknown.WithLabelValues(name)}
	return rm
}
