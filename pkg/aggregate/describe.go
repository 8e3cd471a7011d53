package aggregate

import (
	"sync/atomic"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Effect is what one aggregation rule does to one series, as the rules test
// API (POST /promgov/api/v1/rules/test) shows it.
type Effect struct {
	// Rule and Mode name the rule.
	Rule string `json:"rule"`
	Mode Mode   `json:"mode"`
	// Action is aggregated, dropped (summary quantiles) or passed_through.
	Action string `json:"action"`
	// Outputs are the output series the input folds into (one per output).
	Outputs []string `json:"outputs,omitempty"`
	// Interval is the rule's interval.
	Interval string `json:"interval"`
	// KeepInput: the input is written as well.
	KeepInput bool `json:"keep_input,omitempty"`
	// Reason says why the input is dropped or passed through.
	Reason string `json:"reason,omitempty"`
}

// Effect actions.
const (
	EffectAggregated    = "aggregated"
	EffectDropped       = "dropped"
	EffectPassedThrough = "passed_through"
)

// metricTypes maps metadata type names to Remote Write 2.0 types.
var metricTypes = map[string]writev2.Metadata_MetricType{
	"counter": writev2.Metadata_METRIC_TYPE_COUNTER, "gauge": writev2.Metadata_METRIC_TYPE_GAUGE,
	"histogram": writev2.Metadata_METRIC_TYPE_HISTOGRAM, "gaugehistogram": writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM,
	"summary": writev2.Metadata_METRIC_TYPE_SUMMARY, "info": writev2.Metadata_METRIC_TYPE_INFO,
	"stateset": writev2.Metadata_METRIC_TYPE_STATESET,
}

// Describe returns what every rule reading the series does to it (the
// series of tenant with labels ls and metadata type typ, "" when unknown;
// nativeHistogram: it carries native histograms). It changes no state.
// Safe for concurrent use.
func (e *Engine) Describe(tenant string, ls labels.Labels, typ string, nativeHistogram bool) []Effect {
	name := ls.Get(model.MetricNameLabel)
	rs := e.set.Load().byName[name]
	if len(rs) == 0 {
		return nil
	}
	p := describedSeries(ls, metricTypes[typ], nativeHistogram)
	var out []Effect
	for _, r := range rs {
		if !r.inScope(tenant, p) {
			continue
		}
		ef := Effect{Rule: r.cfg.Name, Mode: ModeEnforce, Interval: r.cfg.Interval.String(), KeepInput: r.cfg.KeepInput}
		if !r.enforce {
			ef.Mode = ModeShadow
		}
		var d decision
		r.decide(tenant, name, p, &d)
		switch {
		case d.pass != "":
			ef.Action, ef.Reason = EffectPassedThrough, d.pass
		case d.drop != "":
			ef.Action, ef.Reason = EffectDropped, d.drop
		default:
			ef.Action = EffectAggregated
			for _, o := range r.outputLabels(name, d.pt, r.keptLabels(d.pt, p)) {
				ef.Outputs = append(ef.Outputs, o.String())
			}
		}
		out = append(out, ef)
	}
	return out
}

// Describer is what a set of aggregation rules does to a series, for a
// process that only describes them (the distributor's rules test API):
// Set replaces the rules whole, so a reload leaves nothing of the previous
// ones. The zero value describes none. Safe for concurrent use.
type Describer struct{ e atomic.Pointer[Engine] }

// Set compiles rules and describes with them from now on. On error
// (invalid rules) it describes none and returns the error.
func (d *Describer) Set(rules []RuleConfig) error {
	e, err := New(Config{Rules: rules}, nil, nil)
	d.e.Store(e) // nil on error or without rules: none
	return err
}

// Describe is Engine.Describe with the rules of the last Set.
func (d *Describer) Describe(tenant string, ls labels.Labels, typ string, nativeHistogram bool) []Effect {
	e := d.e.Load()
	if e == nil {
		return nil
	}
	return e.Describe(tenant, ls, typ, nativeHistogram)
}
