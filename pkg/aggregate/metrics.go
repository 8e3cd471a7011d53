package aggregate

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/promgov/promgov/pkg/stage"
)

// Reasons an input sample or series was not aggregated (label reason of
// promgov_aggregation_dropped_samples_total and _passed_series_total).
const (
	ReasonLate            = "late"             // after its interval closed (max_delay)
	ReasonOutOfOrder      = "out_of_order"     // not newer than the series' last sample
	ReasonInvalid         = "invalid"          // NaN counter, histogram that cannot be merged
	ReasonSummaryQuantile = "summary_quantile" // summary quantiles cannot be aggregated
	ReasonExemplar        = "exemplar"         // exemplars of aggregated inputs
	ReasonUnknownType     = "unknown_type"     // no metadata and no declared type
	ReasonWrongType       = "wrong_type"       // metadata contradicts the rule (type or outputs)
	ReasonUnsupported     = "unsupported"      // gauge histograms, info, stateset, malformed series
	ReasonMaxGroups       = "max_groups"       // aggregations_max_groups reached
)

// metrics are the engine's self-metrics; label rule is bounded by the
// configuration, reason by the constants above.
type metrics struct {
	inputSeries  *prometheus.GaugeVec
	groups       *prometheus.GaugeVec
	samplesIn    *prometheus.CounterVec
	samplesOut   *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	passed       *prometheus.CounterVec
	passedSeries *prometheus.CounterVec
	// verdicts is the family every governance stage counts its verdicts
	// in (pkg/rules on the distributor); here, the consumers' aggregate,
	// copy and drop verdicts.
	verdicts *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		inputSeries: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_aggregation_input_series",
			Help: "Input series an aggregation rule holds state for.",
		}, []string{"rule"}),
		groups: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_aggregation_output_series",
			Help: "Output series (groups) of an aggregation rule, one per output of each group.",
		}, []string{"rule"}),
		samplesIn: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_samples_in_total",
			Help: "Input samples (floats and native histograms) an aggregation rule took.",
		}, []string{"rule"}),
		samplesOut: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_samples_out_total",
			Help: "Output samples an aggregation rule wrote (1 - out/in is the ratio saved).",
		}, []string{"rule"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_dropped_samples_total",
			Help: "Input samples of aggregated series that did not count (late, out of order, invalid, summary quantiles, exemplars).",
		}, []string{"rule", "reason"}),
		passed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_passed_through_samples_total",
			Help: "Samples of series matching an aggregation rule that were written unaggregated, by reason.",
		}, []string{"rule", "reason"}),
		passedSeries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_aggregation_passed_through_series_total",
			Help: "Series (entries) matching an aggregation rule that were written unaggregated, by reason.",
		}, []string{"rule", "reason"}),
		verdicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_rule_series_total",
			Help: "Series a rule acted on (or, with mode=shadow, would have acted on), by rule, action and mode.",
		}, []string{"rule", "action", "mode"}),
	}
}

// verdictActions are the actions of consumers' verdicts that are counted.
var verdictActions = [...]stage.Action{stage.ActionAggregate, stage.ActionCopy, stage.ActionDrop}

// reasons are every reason label value.
var reasons = []string{ReasonLate, ReasonOutOfOrder, ReasonInvalid, ReasonSummaryQuantile, ReasonExemplar,
	ReasonUnknownType, ReasonWrongType, ReasonUnsupported, ReasonMaxGroups}

// deleteRule forgets the children of a rule a reload removed.
func (m *metrics) deleteRule(name string) {
	for _, v := range []*prometheus.GaugeVec{m.inputSeries, m.groups} {
		v.DeleteLabelValues(name)
	}
	for _, v := range []*prometheus.CounterVec{m.samplesIn, m.samplesOut} {
		v.DeleteLabelValues(name)
	}
	for _, r := range reasons {
		for _, v := range []*prometheus.CounterVec{m.dropped, m.passed, m.passedSeries} {
			v.DeleteLabelValues(name, r)
		}
	}
	for _, a := range verdictActions {
		for _, mode := range []Mode{ModeEnforce, ModeShadow} {
			m.verdicts.DeleteLabelValues(name, string(a), string(mode))
		}
	}
}

// ruleMetrics are one rule's children, resolved once.
type ruleMetrics struct {
	inputSeries, groups prometheus.Gauge
	in, out             prometheus.Counter
	dropped, passed     map[string]prometheus.Counter
	passedSeries        map[string]prometheus.Counter
	verdicts            [len(verdictActions)]prometheus.Counter
}

func (m *metrics) forRule(name string, mode Mode) *ruleMetrics {
	rm := &ruleMetrics{
		inputSeries:  m.inputSeries.WithLabelValues(name),
		groups:       m.groups.WithLabelValues(name),
		in:           m.samplesIn.WithLabelValues(name),
		out:          m.samplesOut.WithLabelValues(name),
		dropped:      map[string]prometheus.Counter{},
		passed:       map[string]prometheus.Counter{},
		passedSeries: map[string]prometheus.Counter{},
	}
	for _, r := range reasons {
		rm.dropped[r] = m.dropped.WithLabelValues(name, r)
		rm.passed[r] = m.passed.WithLabelValues(name, r)
		rm.passedSeries[r] = m.passedSeries.WithLabelValues(name, r)
	}
	for i, a := range verdictActions {
		rm.verdicts[i] = m.verdicts.WithLabelValues(name, string(a), string(mode))
	}
	return rm
}

// verdict counts a consumer's verdict (in the rule's mode).
func (rm *ruleMetrics) verdict(a stage.Action) {
	for i, va := range verdictActions {
		if a == va {
			rm.verdicts[i].Inc()
			return
		}
	}
}

func (rm *ruleMetrics) drop(reason string, n int) {
	if n > 0 {
		rm.dropped[reason].Add(float64(n))
	}
}

func (rm *ruleMetrics) pass(reason string, samples int) {
	rm.passedSeries[reason].Inc()
	if samples > 0 {
		rm.passed[reason].Add(float64(samples))
	}
}
