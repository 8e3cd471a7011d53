package preview

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/reservoir"
	"github.com/promgov/promgov/pkg/rules"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// MaxExamples bounds the examples of one preview.
const MaxExamples = 1000

// Sampler is the reservoir as the preview reads it. Safe for concurrent
// use.
type Sampler interface {
	Samples(tenant string, now time.Time) []reservoir.MetricSample
}

// Aggregations says what aggregation rules do to a series
// (aggregate.Engine and aggregate.Describer implement it). Safe for
// concurrent use; it changes no state.
type Aggregations interface {
	Describe(tenant string, ls labels.Labels, typ string, nativeHistogram bool) []aggregate.Effect
}

var _ Aggregations = (*aggregate.Engine)(nil)

// Ingester answers ClusterService.PreviewConfig on an ingester. Safe for
// concurrent use.
type Ingester struct {
	samples Sampler
	stats   cardinality.Source
	running Aggregations // nil: none
	now     func() time.Time
}

// NewIngester previews from samples, scaled with the metrics' cardinality
// rows of stats (the ingester's cardinality.Tracker); running are the
// aggregation rules the ingester runs (a nil interface: none), applied after the rules
// before and, unless the candidate has its own, after.
func NewIngester(samples Sampler, stats cardinality.Source, running Aggregations) *Ingester {
	if samples == nil || stats == nil {
		panic("preview.NewIngester: samples and stats are required")
	}
	return &Ingester{samples: samples, stats: stats, running: running, now: time.Now}
}

// Preview runs req's candidate rules over the sample of every metric this
// ingester owns.
func (p *Ingester) Preview(ctx context.Context, req *ingesterv1.PreviewConfigRequest) (*ingesterv1.PreviewConfigResponse, error) {
	cfg, err := rules.LoadConfig([]byte(req.GetRules()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "candidate rules: %v", err)
	}
	eng, err := rules.Compile(cfg, nil)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "candidate rules: %v", err)
	}
	defer eng.Close(context.Background())
	bcfg, err := rules.LoadConfig([]byte(req.GetBaselineRules()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "baseline rules: %v", err)
	}
	base, err := rules.Compile(bcfg, nil)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "baseline rules: %v", err)
	}
	defer base.Close(context.Background())
	after := p.running
	if req.GetAggregationsVersioned() {
		var cand []aggregate.RuleConfig
		if err := yaml.Unmarshal([]byte(req.GetAggregations()), &cand); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "candidate aggregations: %v", err)
		}
		var d aggregate.Describer
		if err := d.Set(cand); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "candidate aggregations: %v", err)
		}
		after = &d
	}
	rows, err := p.stats.Metrics(ctx, cardinality.Query{Tenant: req.GetTenant(), Limit: -1})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "cardinality rows: %v", err)
	}
	type mkey struct{ tenant, metric string }
	stats := make(map[mkey]cardinality.MetricCardinality, len(rows))
	for _, r := range rows {
		stats[mkey{r.Tenant, r.Name}] = r
	}
	maxEx := int(min(max(req.GetMaxExamples(), 0), MaxExamples))
	c := newComputer(eng, base, maxEx)
	c.aggBefore, c.aggAfter = p.running, after
	for _, ms := range p.samples.Samples(req.GetTenant(), p.now()) {
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
		row, known := stats[mkey{ms.Tenant, ms.Metric}]
		c.metric(ms, row, known)
	}
	return c.response(), nil
}

// computer accumulates one ingester's answer.
type computer struct {
	eng  *rules.Engine
	base *rules.Engine
	// aggBefore and aggAfter are the aggregation rules applied after the
	// baseline's and the candidate's rules (nil: none).
	aggBefore, aggAfter Aggregations
	maxEx               int
	perRule             int
	out                 ingesterv1.PreviewConfigResponse
	rules               map[string]*ruleAcc
	order               []string
	examples            map[string]int // per rule
}

type ruleAcc struct {
	kind, mode string
	effects    map[string]*ingesterv1.PreviewEffect
}

func newComputer(eng, base *rules.Engine, maxEx int) *computer {
	c := &computer{eng: eng, base: base, maxEx: maxEx, rules: map[string]*ruleAcc{}, examples: map[string]int{}}
	for i := range eng.Len() {
		name := eng.RuleName(i)
		c.rules[name] = &ruleAcc{effects: map[string]*ingesterv1.PreviewEffect{}}
		c.order = append(c.order, name)
	}
	c.perRule = max(1, maxEx/max(1, eng.Len()))
	return c
}

// outputAcc is one output metric of a sampled metric.
type outputAcc struct {
	sampled int
	series  map[string]struct{}
	// values are the distinct values of each label (not for an
	// aggregation's outputs, which no limit counts).
	values map[string]map[string]struct{}
	// interval is set for an aggregation's output: one sample per series
	// and interval, whatever its inputs send.
	interval time.Duration
}

// metric previews one metric's sample. row is its cardinality row (known
// false: none, then the sample is all there is).
func (c *computer) metric(ms reservoir.MetricSample, row cardinality.MetricCardinality, known bool) {
	k := len(ms.Series)
	c.out.SampledSeries += uint64(k)
	n := float64(k)
	exact := !ms.Full
	if !exact && known && row.Series > uint64(k) {
		n = float64(row.Series)
	}
	rate := row.SamplesRate
	pm := &ingesterv1.PreviewMetric{Tenant: ms.Tenant, Metric: ms.Metric, Series: uint64(n), SamplesRate: rate, Sampled: uint32(k), Exact: exact}
	perSeries, perRate := n/float64(k), rate/float64(k)

	outputs, before := map[string]*outputAcc{}, map[string]*outputAcc{}
	touched := map[string]map[string]bool{} // rule → effects seen in this metric
	var tr rules.Trace
	var dropped, rewritten, tagged int
	for _, ser := range ms.Series {
		tr.Reset()
		wasRewritten, wasTagged := false, false
		s := rules.Series{Tenant: ms.Tenant, Labels: ser.Labels, Meta: rules.Metadata{Type: typeOf(ser)}}
		was := c.base.Apply(&s, nil)
		var wasAgg, resAgg aggOutcome
		if was.Action != rules.Dropped {
			before, wasAgg = aggregated(before, c.aggBefore, ms.Tenant, ser, was.Labels)
		}
		s = rules.Series{Tenant: ms.Tenant, Labels: ser.Labels, Meta: rules.Metadata{Type: typeOf(ser)}}
		res := c.eng.Apply(&s, &tr)
		if res.Action != rules.Dropped {
			outputs, resAgg = aggregated(outputs, c.aggAfter, ms.Tenant, ser, res.Labels)
		}
		if sameOutcome(was, res) && wasAgg.written == resAgg.written {
			continue // what the active rules do already: not the change's
		}
		for _, e := range resAgg.effects {
			c.countAggregation(e, perSeries, perRate, touched)
		}
		affected := false
		for _, st := range tr.Steps {
			for _, eff := range effectsOf(st) {
				c.count(st.Rule, st.Kind, string(st.Mode), eff, perSeries, perRate, touched)
				affected = true
			}
			wasRewritten = wasRewritten || st.Effect == rules.EffectRewritten
			wasTagged = wasTagged || st.Effect == rules.EffectTagged
		}
		if wasRewritten {
			rewritten++
		}
		if wasTagged {
			tagged++
		}
		if res.Action == rules.Dropped {
			dropped++
		}
		if affected {
			c.example(ms.Tenant, ser.Labels, res, tr.Steps)
		}
	}
	pm.SeriesDropped = float64(dropped) * perSeries
	pm.SamplesRateDropped = float64(dropped) * perRate
	pm.SeriesRewritten = float64(rewritten) * perSeries
	pm.SeriesTagged = float64(tagged) * perSeries
	for _, o := range estimate(before, exact, perSeries, perRate) {
		pm.SeriesBefore += o.Series
		pm.SamplesRateBefore += o.SamplesRate
	}
	pm.Outputs = estimate(outputs, exact, perSeries, perRate)
	pm.NamesUnchanged = sameNames(before, outputs)
	c.out.Metrics = append(c.out.Metrics, pm)
}

// addOutput counts one sampled series written as ls.
func addOutput(outs map[string]*outputAcc, ls labels.Labels) map[string]*outputAcc {
	name := ls.Get(model.MetricNameLabel)
	outs = addOutputKey(outs, name, ls.String(), 0)
	o := outs[name]
	if o.values == nil {
		o.values = map[string]map[string]struct{}{}
	}
	ls.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		vs := o.values[l.Name]
		if vs == nil {
			vs = map[string]struct{}{}
			o.values[l.Name] = vs
		}
		vs[l.Value] = struct{}{}
	})
	return outs
}

func addOutputKey(outs map[string]*outputAcc, name, series string, interval time.Duration) map[string]*outputAcc {
	o := outs[name]
	if o == nil {
		o = &outputAcc{series: map[string]struct{}{}, interval: interval}
		outs[name] = o
	}
	o.sampled++
	o.series[series] = struct{}{}
	return outs
}

// aggOutcome is what aggregation rules made of one series: how it is
// written (its outputs, and itself unless aggregated away) and each rule's
// effect on it.
type aggOutcome struct {
	written string
	effects []aggregate.Effect
}

// aggregated counts one sampled series written as ls through the
// aggregation rules agg (nil: none): its outputs when an enforced rule
// aggregates it (and the series itself when the rule keeps its input),
// nothing when one drops it, else the series.
func aggregated(outs map[string]*outputAcc, agg Aggregations, tenant string, ser reservoir.Series, ls labels.Labels) (map[string]*outputAcc, aggOutcome) {
	var (
		out  aggOutcome
		keep = true
		w    strings.Builder
	)
	if agg != nil {
		for _, ef := range agg.Describe(tenant, ls, string(typeOf(ser)), nativeHistogram(ser, ls)) {
			if ef.Mode == aggregate.ModeShadow || ef.Action == aggregate.EffectPassedThrough {
				if ef.Action == aggregate.EffectAggregated {
					out.effects = append(out.effects, ef) // would_aggregate
				}
				continue
			}
			out.effects = append(out.effects, ef)
			if ef.Action != aggregate.EffectAggregated {
				keep = false // dropped (a summary's quantiles)
				continue
			}
			iv, _ := model.ParseDuration(ef.Interval)
			for _, o := range ef.Outputs {
				outs = addOutputKey(outs, nameOf(o), o, time.Duration(iv))
				w.WriteString(o)
				w.WriteByte('\n')
			}
			keep = keep && ef.KeepInput
		}
	}
	if keep {
		outs = addOutput(outs, ls)
		w.WriteString("(itself)")
	}
	out.written = w.String()
	return outs, out
}

// countAggregation adds one affected sampled series to the effect of the
// aggregation rule of ef (a row "aggregations: <rule>" of the preview's
// rules): aggregated, would_aggregate (shadow) or dropped.
func (c *computer) countAggregation(ef aggregate.Effect, perSeries, perRate float64, touched map[string]map[string]bool) {
	effect := ef.Action
	if ef.Mode == aggregate.ModeShadow {
		effect = "would_aggregate"
	}
	c.count("aggregations: "+ef.Rule, "aggregation", string(ef.Mode), effect, perSeries, perRate, touched)
}

// count adds one affected sampled series (perSeries series, perRate
// samples/s) to effect of rule (a row of the preview's rules, added in
// order on its first effect, e.g. the final validation step's), and the
// metric to the effect's metrics once (touched: this metric's rules and
// effects so far).
func (c *computer) count(rule, kind, mode, effect string, perSeries, perRate float64, touched map[string]map[string]bool) {
	acc := c.rules[rule]
	if acc == nil {
		acc = &ruleAcc{effects: map[string]*ingesterv1.PreviewEffect{}}
		c.rules[rule] = acc
		c.order = append(c.order, rule)
	}
	acc.kind, acc.mode = kind, mode
	e := acc.effects[effect]
	if e == nil {
		e = &ingesterv1.PreviewEffect{Effect: effect}
		acc.effects[effect] = e
	}
	e.Series += perSeries
	e.SamplesRate += perRate
	if touched[rule] == nil {
		touched[rule] = map[string]bool{}
	}
	if !touched[rule][effect] {
		touched[rule][effect] = true
		e.Metrics++
	}
}

// nativeHistogram guesses whether a sampled series carries native
// histograms (the reservoir keeps labels and type, not samples): a
// histogram-typed series that is none of a classic histogram's parts.
func nativeHistogram(ser reservoir.Series, ls labels.Labels) bool {
	if ser.Type != writev2.Metadata_METRIC_TYPE_HISTOGRAM && ser.Type != writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM {
		return false
	}
	if ls.Has("le") {
		return false
	}
	name := ls.Get(model.MetricNameLabel)
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if strings.HasSuffix(name, suf) {
			return false
		}
	}
	return true
}

// estimate scales the sampled outputs to series and samples/s, by output
// metric name.
func estimate(outs map[string]*outputAcc, exact bool, perSeries, perRate float64) []*ingesterv1.PreviewOutput {
	names := make([]string, 0, len(outs))
	for name := range outs {
		names = append(names, name)
	}
	slices.Sort(names)
	res := make([]*ingesterv1.PreviewOutput, 0, len(names))
	for _, name := range names {
		o := outs[name]
		series := distinct(float64(o.sampled)*perSeries, o.sampled, len(o.series))
		if exact {
			series = float64(len(o.series))
		}
		rate := float64(o.sampled) * perRate
		if o.interval > 0 { // an aggregation's output: one sample per series and interval
			rate = series / o.interval.Seconds()
		}
		po := &ingesterv1.PreviewOutput{Metric: name, Series: series, SamplesRate: rate}
		lnames := make([]string, 0, len(o.values))
		for l := range o.values {
			lnames = append(lnames, l)
		}
		slices.Sort(lnames)
		for _, l := range lnames {
			v := distinct(float64(o.sampled)*perSeries, o.sampled, len(o.values[l]))
			if exact {
				v = float64(len(o.values[l]))
			}
			po.Labels = append(po.Labels, &ingesterv1.PreviewLabelValues{Name: l, Values: v})
		}
		res = append(res, po)
	}
	return res
}

// sameNames reports whether a and b hold the same output metrics.
func sameNames(a, b map[string]*outputAcc) bool {
	if len(a) != len(b) {
		return false
	}
	for name := range a {
		if b[name] == nil {
			return false
		}
	}
	return true
}

// sameOutcome reports whether the baseline and the candidate write a
// series the same way (or both drop it).
func sameOutcome(a, b rules.Result) bool {
	if (a.Action == rules.Dropped) != (b.Action == rules.Dropped) {
		return false
	}
	return a.Action == rules.Dropped || labels.Equal(a.Labels, b.Labels)
}

// effectsOf names what one trace step did: its effect when a rule matched
// and did something, plus renamed (would_rename) when a rewrite changed the
// metric name.
func effectsOf(st rules.TraceStep) []string {
	switch st.Effect {
	case "", rules.EffectNone, rules.EffectOutOfScope:
		return nil
	case rules.EffectRewritten, rules.EffectWouldRewr:
		if nameOf(st.Before) != nameOf(st.After) {
			if st.Effect == rules.EffectRewritten {
				return []string{string(st.Effect), "renamed"}
			}
			return []string{string(st.Effect), "would_rename"}
		}
	}
	return []string{string(st.Effect)}
}

// nameOf is the metric name of a series in PromQL notation (the traces'
// Before and After).
func nameOf(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '{' {
			if i > 0 {
				return s[:i]
			}
			break
		}
	}
	// {__name__="x", ...} (names outside the legacy character set)
	const p = `{__name__="`
	if len(s) > len(p) && s[:len(p)] == p {
		rest := s[len(p):]
		for i := 0; i < len(rest); i++ {
			if rest[i] == '"' {
				return rest[:i]
			}
		}
	}
	return s
}

func typeOf(s reservoir.Series) model.MetricType {
	if s.Type == 0 {
		return ""
	}
	return rules.TypeFromRW2(s.Type)
}

// example keeps an affected series with its trace, at most perRule per
// first affecting rule and maxEx in all.
func (c *computer) example(tenant string, in labels.Labels, res rules.Result, steps []rules.TraceStep) {
	if len(c.out.Examples) >= c.maxEx {
		return
	}
	first := ""
	for _, st := range steps {
		if len(effectsOf(st)) > 0 {
			first = st.Rule
			break
		}
	}
	if c.examples[first] >= c.perRule {
		return
	}
	c.examples[first]++
	ex := &ingesterv1.PreviewExample{Tenant: tenant, Input: in.String(), Action: res.Action.String(), Rule: res.Rule, Reason: res.Reason}
	if res.Action != rules.Dropped {
		ex.Output = res.Labels.String()
	}
	for _, st := range steps {
		ex.Trace = append(ex.Trace, &ingesterv1.PreviewTraceStep{Rule: st.Rule, Kind: st.Kind, Mode: string(st.Mode), InScope: st.InScope,
			Matched: st.Matched, TypeUnknown: st.TypeUnknown, Action: string(st.Action), Effect: string(st.Effect), Reason: st.Reason,
			Before: st.Before, After: st.After})
	}
	c.out.Examples = append(c.out.Examples, ex)
}

func (c *computer) response() *ingesterv1.PreviewConfigResponse {
	for _, name := range c.order {
		acc := c.rules[name]
		pr := &ingesterv1.PreviewRule{Rule: name, Kind: acc.kind, Mode: acc.mode}
		effs := make([]string, 0, len(acc.effects))
		for e := range acc.effects {
			effs = append(effs, e)
		}
		slices.Sort(effs)
		for _, e := range effs {
			pr.Effects = append(pr.Effects, acc.effects[e])
		}
		c.out.Rules = append(c.out.Rules, pr)
	}
	return &c.out
}
