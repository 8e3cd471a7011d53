package preview

import (
	"cmp"
	"slices"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Data is the answer of POST /promgov/api/v1/config/preview. Series counts
// after the candidate are estimates (see docs/governance.md for how they
// are made and how close they come).
type Data struct {
	// Candidate is the content hash of the candidate's canonical YAML (the
	// hash a version of it would have).
	Candidate string `json:"candidate"`
	// Tenant is the tenant previewed; empty is every tenant.
	Tenant string `json:"tenant,omitempty"`
	Totals Totals `json:"totals"`
	// Rules has one row per rule of the candidate, in order.
	Rules []Rule `json:"rules"`
	// Limits has the candidate's cardinality limits that the series after
	// its rules would exceed.
	Limits []Limit `json:"limits"`
	// Metrics has the metrics whose series or samples the candidate would
	// change, the most series saved first (at most MaxMetricRows;
	// MetricsOmitted counts the rest).
	Metrics        []Metric `json:"metrics"`
	MetricsOmitted int      `json:"metrics_omitted,omitempty"`
	// Examples are affected sampled series with their rule traces.
	Examples []Example `json:"examples"`
	// SampledSeries and SampledMetrics are what the ingesters' reservoirs
	// held; Ingesters is how many answered.
	SampledSeries  uint64 `json:"sampled_series"`
	SampledMetrics int    `json:"sampled_metrics"`
	Ingesters      int    `json:"ingesters"`
	// DropUnusedBlocked says why the candidate's usage.drop_unused would
	// select nothing now (no_data, source_unhealthy, data_too_young).
	DropUnusedBlocked string `json:"drop_unused_blocked,omitempty"`
}

// Totals sums over every sampled metric.
type Totals struct {
	SeriesBefore       float64 `json:"series_before"`
	SeriesAfter        float64 `json:"series_after"`
	SeriesSaved        float64 `json:"series_saved"`
	SeriesDropped      float64 `json:"series_dropped"`
	SeriesRewritten    float64 `json:"series_rewritten"`
	SeriesTagged       float64 `json:"series_tagged"`
	SeriesRefused      float64 `json:"series_refused"`
	SamplesRateBefore  float64 `json:"samples_rate_before"`
	SamplesRateAfter   float64 `json:"samples_rate_after"`
	SamplesRateDropped float64 `json:"samples_rate_dropped"`
	SamplesRateRefused float64 `json:"samples_rate_refused"`
	MetricsChanged     int     `json:"metrics_changed"`
}

// Rule is what one rule of the candidate would do.
type Rule struct {
	Rule    string   `json:"rule"`
	Kind    string   `json:"kind,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	Effects []Effect `json:"effects"`
}

// Effect is one kind of effect of a rule: dropped, rewritten, renamed,
// tagged, warned, or their would_* forms in shadow mode.
type Effect struct {
	Effect      string  `json:"effect"`
	Series      float64 `json:"series"`
	SamplesRate float64 `json:"samples_rate"`
	Metrics     int     `json:"metrics"`
}

// Limit is one candidate limit the series after its rules exceed.
type Limit struct {
	Limit  string `json:"limit"`
	Tenant string `json:"tenant"`
	// Metric is empty for max_series_per_tenant.
	Metric string `json:"metric,omitempty"`
	// Label and Values are max_values_per_label's: the label and its
	// estimated distinct values after the rules.
	Label  string  `json:"label,omitempty"`
	Values float64 `json:"values,omitempty"`
	Max    int64   `json:"max"`
	// Mode is enforce (refused) or shadow (only counted).
	Mode               string  `json:"mode"`
	SeriesAfterRules   float64 `json:"series_after_rules"`
	SeriesRefused      float64 `json:"series_refused"`
	SamplesRateRefused float64 `json:"samples_rate_refused"`
}

// Metric is one metric the candidate changes.
type Metric struct {
	Tenant             string   `json:"tenant"`
	Metric             string   `json:"metric"`
	SeriesBefore       float64  `json:"series_before"`
	SeriesAfter        float64  `json:"series_after"`
	SamplesRateBefore  float64  `json:"samples_rate_before"`
	SamplesRateAfter   float64  `json:"samples_rate_after"`
	SeriesDropped      float64  `json:"series_dropped"`
	SamplesRateDropped float64  `json:"samples_rate_dropped"`
	SeriesRewritten    float64  `json:"series_rewritten"`
	SeriesTagged       float64  `json:"series_tagged"`
	Outputs            []Output `json:"outputs"`
	Sampled            int      `json:"sampled"`
	// Exact is set when the sample held every live series of the metric.
	Exact bool `json:"exact"`

	namesUnchanged bool // written under the same names before and after
}

// Output is a metric the series of a previewed metric would be written as.
type Output struct {
	Metric      string  `json:"metric"`
	Series      float64 `json:"series"`
	SamplesRate float64 `json:"samples_rate"`

	values map[string]float64 // estimated distinct values per label
}

// Example is one affected sampled series.
type Example struct {
	Tenant string            `json:"tenant"`
	Input  string            `json:"input"`
	Output string            `json:"output,omitempty"`
	Action string            `json:"action"`
	Rule   string            `json:"rule,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Trace  []rules.TraceStep `json:"trace"`
}

// MaxMetricRows bounds Data.Metrics.
const MaxMetricRows = 1000

// Merge merges the answers of every ingester and applies the candidate's
// limits (lim) to the series after its rules.
func Merge(parts []*ingesterv1.PreviewConfigResponse, lim *cardinality.LimitResolver, maxExamples int) Data {
	return merge(parts, lim, nil, maxExamples)
}

// dropUnused is what a candidate's usage.drop_unused selects now.
type dropUnused struct {
	names   map[string]bool
	mode    string
	blocked string // why it selects none (usage.Blocked*), "" when not blocked
}

// merge is Merge applying du (nil: none) after the rules and before the
// limits, as the write path does.
func merge(parts []*ingesterv1.PreviewConfigResponse, lim *cardinality.LimitResolver, du *dropUnused, maxExamples int) Data {
	d := Data{Rules: []Rule{}, Limits: []Limit{}, Metrics: []Metric{}, Examples: []Example{}, Ingesters: len(parts)}
	seen := map[mkey]bool{}
	ruleIdx := map[string]int{}
	var all []Metric
	for _, p := range parts {
		d.SampledSeries += p.GetSampledSeries()
		for _, pr := range p.GetRules() {
			i, ok := ruleIdx[pr.GetRule()]
			if !ok {
				i = len(d.Rules)
				ruleIdx[pr.GetRule()] = i
				d.Rules = append(d.Rules, Rule{Rule: pr.GetRule(), Effects: []Effect{}})
			}
			r := &d.Rules[i]
			if pr.GetKind() != "" {
				r.Kind, r.Mode = pr.GetKind(), pr.GetMode()
			}
			for _, e := range pr.GetEffects() {
				j := slices.IndexFunc(r.Effects, func(x Effect) bool { return x.Effect == e.GetEffect() })
				if j < 0 {
					j = len(r.Effects)
					r.Effects = append(r.Effects, Effect{Effect: e.GetEffect()})
				}
				r.Effects[j].Series += e.GetSeries()
				r.Effects[j].SamplesRate += e.GetSamplesRate()
				r.Effects[j].Metrics += int(e.GetMetrics())
			}
		}
		for _, pm := range p.GetMetrics() {
			k := mkey{pm.GetTenant(), pm.GetMetric()}
			if seen[k] { // two owners answered during a ring change
				continue
			}
			seen[k] = true
			d.SampledMetrics++
			all = append(all, metricOf(pm))
		}
		for _, ex := range p.GetExamples() {
			if len(d.Examples) < maxExamples {
				d.Examples = append(d.Examples, exampleOf(ex))
			}
		}
	}
	d.applyDropUnused(du, all)
	d.applyLimits(lim, all)
	for _, m := range all {
		t := &d.Totals
		t.SeriesBefore += m.SeriesBefore
		t.SeriesAfter += m.SeriesAfter
		t.SeriesDropped += m.SeriesDropped
		t.SeriesRewritten += m.SeriesRewritten
		t.SeriesTagged += m.SeriesTagged
		t.SamplesRateBefore += m.SamplesRateBefore
		t.SamplesRateAfter += m.SamplesRateAfter
		t.SamplesRateDropped += m.SamplesRateDropped
		if changed(m) {
			t.MetricsChanged++
			d.Metrics = append(d.Metrics, m)
		}
	}
	d.Totals.SeriesSaved = d.Totals.SeriesBefore - d.Totals.SeriesAfter
	slices.SortFunc(d.Metrics, func(a, b Metric) int {
		return cmp.Or(cmp.Compare(b.SeriesBefore-b.SeriesAfter, a.SeriesBefore-a.SeriesAfter),
			cmp.Compare(b.SamplesRateBefore-b.SamplesRateAfter, a.SamplesRateBefore-a.SamplesRateAfter),
			cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Metric, b.Metric))
	})
	if len(d.Metrics) > MaxMetricRows {
		d.MetricsOmitted = len(d.Metrics) - MaxMetricRows
		d.Metrics = d.Metrics[:MaxMetricRows]
	}
	return d
}

// applyDropUnused applies the candidate's usage.drop_unused to the outputs
// of every metric (the distributor checks a series' final metric name,
// after the rules): in enforce mode what it selects is dropped, in shadow
// mode only counted. It adds a rule row usage.drop_unused.
func (d *Data) applyDropUnused(du *dropUnused, all []Metric) {
	if du == nil {
		return
	}
	d.DropUnusedBlocked = du.blocked
	if len(du.names) == 0 {
		return
	}
	enforce := du.mode == usage.ModeEnforce
	e := Effect{Effect: "would_drop"}
	if enforce {
		e.Effect = "dropped"
	}
	for i := range all {
		m := &all[i]
		hit := false
		kept := m.Outputs[:0]
		for _, o := range m.Outputs {
			if !du.names[o.Metric] {
				kept = append(kept, o)
				continue
			}
			hit = true
			e.Series += o.Series
			e.SamplesRate += o.SamplesRate
			if !enforce {
				kept = append(kept, o)
				continue
			}
			m.SeriesAfter -= o.Series
			m.SamplesRateAfter -= o.SamplesRate
			m.SeriesDropped += o.Series
			m.SamplesRateDropped += o.SamplesRate
		}
		m.Outputs = kept
		if hit {
			e.Metrics++
		}
	}
	if e.Metrics > 0 {
		d.Rules = append(d.Rules, Rule{Rule: "usage.drop_unused", Kind: "drop_unused", Mode: du.mode, Effects: []Effect{e}})
	}
}

// mkey is a (tenant, metric).
type mkey struct{ tenant, metric string }

// applyLimits checks the series after the rules of every (tenant, output
// metric) against the candidate's max_series_per_metric, then every
// tenant's total against max_series_per_tenant. An enforced refusal is
// taken from the outputs that make up the refused total, in proportion,
// so the metrics' series after (and the totals) are what would be written.
// A metric's refusals come before its tenant's: the tenant limit counts
// what the metric limit admitted.
func (d *Data) applyLimits(lim *cardinality.LimitResolver, all []Metric) {
	if lim == nil {
		return
	}
	type part struct{ m, o int }
	type acc struct {
		series, rate float64
		parts        []part
		values       map[string]float64 // per label, the most any part saw
	}
	outputs := map[mkey]*acc{}
	tenants := map[string]*acc{}
	var keys []mkey
	var order []string
	for i, m := range all {
		for j, o := range m.Outputs {
			k := mkey{m.Tenant, o.Metric}
			if outputs[k] == nil {
				outputs[k] = &acc{}
				keys = append(keys, k)
			}
			a := outputs[k]
			a.series += o.Series
			a.rate += o.SamplesRate
			a.parts = append(a.parts, part{i, j})
			for l, v := range o.values {
				if a.values == nil {
					a.values = map[string]float64{}
				}
				a.values[l] = max(a.values[l], v)
			}
		}
	}
	// refuse records a limit over a.series and, enforced, scales the parts
	// down to max.
	refuse := func(l Limit, a *acc, kept float64) {
		l.SeriesAfterRules, l.SeriesRefused = a.series, a.series-kept
		l.SamplesRateRefused = a.rate * l.SeriesRefused / a.series
		d.Limits = append(d.Limits, l)
		if l.Mode != string(cardinality.ModeEnforce) {
			return
		}
		d.Totals.SeriesRefused += l.SeriesRefused
		d.Totals.SamplesRateRefused += l.SamplesRateRefused
		keep := kept / a.series
		for _, p := range a.parts {
			m, o := &all[p.m], &all[p.m].Outputs[p.o]
			m.SeriesAfter -= o.Series * (1 - keep)
			m.SamplesRateAfter -= o.SamplesRate * (1 - keep)
			o.Series *= keep
			o.SamplesRate *= keep
		}
		a.series, a.rate = kept, a.rate*keep
	}
	for _, k := range keys {
		a := outputs[k]
		r := lim.Resolve(k.tenant, k.metric)
		if r.Exempt {
			continue
		}
		if r.MaxValuesPerLabel > 0 {
			// A series whose value would be beyond the first max values of
			// a label is refused: at steady state, about 1 - max/values of
			// the output's series, for the label that refuses the most.
			worst, wv := "", 0.0
			for l, v := range a.values {
				if v > float64(r.MaxValuesPerLabel) && (v > wv || v == wv && l < worst) {
					worst, wv = l, v
				}
			}
			if worst != "" {
				keep := float64(r.MaxValuesPerLabel) / wv
				refuse(Limit{Limit: cardinality.LimitValuesPerLabel, Tenant: k.tenant, Metric: k.metric, Label: worst, Values: wv,
					Max: r.MaxValuesPerLabel, Mode: string(r.ValuesPerLabelOn)}, a, a.series*keep)
			}
		}
		if r.MaxSeriesPerMetric > 0 && a.series > float64(r.MaxSeriesPerMetric) {
			refuse(Limit{Limit: cardinality.LimitSeriesPerMetric, Tenant: k.tenant, Metric: k.metric, Max: r.MaxSeriesPerMetric,
				Mode: string(r.SeriesPerMetricOn)}, a, float64(r.MaxSeriesPerMetric))
		}
		t := tenants[k.tenant]
		if t == nil {
			t = &acc{}
			tenants[k.tenant] = t
			order = append(order, k.tenant)
		}
		t.series += a.series
		t.rate += a.rate
		t.parts = append(t.parts, a.parts...)
	}
	slices.Sort(order)
	for _, tenant := range order {
		t := tenants[tenant]
		r := lim.Resolve(tenant, "")
		if r.MaxSeriesPerTenant > 0 && t.series > float64(r.MaxSeriesPerTenant) {
			refuse(Limit{Limit: cardinality.LimitSeriesPerTenant, Tenant: tenant, Max: r.MaxSeriesPerTenant, Mode: string(r.SeriesPerTenantOn)}, t, float64(r.MaxSeriesPerTenant))
		}
	}
}

func metricOf(pm *ingesterv1.PreviewMetric) Metric {
	m := Metric{Tenant: pm.GetTenant(), Metric: pm.GetMetric(), SeriesBefore: pm.GetSeriesBefore(), SamplesRateBefore: pm.GetSamplesRateBefore(),
		SeriesDropped: pm.GetSeriesDropped(), SamplesRateDropped: pm.GetSamplesRateDropped(), SeriesRewritten: pm.GetSeriesRewritten(),
		SeriesTagged: pm.GetSeriesTagged(), Sampled: int(pm.GetSampled()), Exact: pm.GetExact(), Outputs: []Output{},
		namesUnchanged: pm.GetNamesUnchanged()}
	for _, o := range pm.GetOutputs() {
		out := Output{Metric: o.GetMetric(), Series: o.GetSeries(), SamplesRate: o.GetSamplesRate()}
		for _, l := range o.GetLabels() {
			if out.values == nil {
				out.values = map[string]float64{}
			}
			out.values[l.GetName()] = l.GetValues()
		}
		m.Outputs = append(m.Outputs, out)
		m.SeriesAfter += o.GetSeries()
		m.SamplesRateAfter += o.GetSamplesRate()
	}
	return m
}

// changed reports whether the candidate changes m: series saved or added,
// samples dropped, a series rewritten or tagged, or a new name.
func changed(m Metric) bool {
	renamed := !m.namesUnchanged && (len(m.Outputs) != 1 || m.Outputs[0].Metric != m.Metric)
	return m.SeriesBefore-m.SeriesAfter >= 0.5 || m.SeriesAfter-m.SeriesBefore >= 0.5 || m.SeriesDropped > 0 ||
		m.SeriesRewritten > 0 || m.SeriesTagged > 0 || (renamed && m.SeriesBefore > 0)
}

func exampleOf(ex *ingesterv1.PreviewExample) Example {
	e := Example{Tenant: ex.GetTenant(), Input: ex.GetInput(), Output: ex.GetOutput(), Action: ex.GetAction(), Rule: ex.GetRule(),
		Reason: ex.GetReason(), Trace: []rules.TraceStep{}}
	for _, st := range ex.GetTrace() {
		e.Trace = append(e.Trace, rules.TraceStep{Rule: st.GetRule(), Kind: st.GetKind(), Mode: rules.Mode(st.GetMode()),
			InScope: st.GetInScope(), Matched: st.GetMatched(), TypeUnknown: st.GetTypeUnknown(), Action: rules.Action(st.GetAction()),
			Effect: rules.Effect(st.GetEffect()), Reason: st.GetReason(), Before: st.GetBefore(), After: st.GetAfter()})
	}
	return e
}
