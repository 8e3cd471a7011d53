package aggregate

import (
	"fmt"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/stage"
)

// The aggregation rules and the overflow aggregation are stage.Consumers
// (pkg/stage): each decides per series, like every other rule kind, and
// folds the samples of the series it takes. The Engine is where they run:
// Process and Overflow hand each entry to the consumers that read its
// metric and apply their modes; Describe, Takes and Eval ask the same
// decision (rule.decide) without consuming.
var (
	_ stage.Consumer = (*rule)(nil)
	_ stage.Consumer = (*overflowStage)(nil)
)

// decision is what rule r does with one input series in its scope.
type decision struct {
	v          stage.Verdict
	g          *group // the group the series folded into (fold)
	pass, drop string // classify's reasons
	pt         part
	k          kind
	hist       bool
	typ        writev2.Metadata_MetricType
}

// verdict is d's verdict, with the group's first output series as its
// Labels when wantLabels and the series was folded.
func (d *decision) verdict(wantLabels bool) stage.Verdict {
	if wantLabels && d.g != nil {
		d.v.Labels = d.g.out[0].labels
	}
	return d.v
}

// decide is the one place where a rule decides what it does with an input
// series p of tenant (metric name), in its scope: Consume (the write path),
// Eval, Describe and Takes all call it. It changes no state.
func (r *rule) decide(tenant, name string, p *parsed, d *decision) {
	*d = decision{}
	d.typ = r.e.typeOf(r, tenant, name, p)
	d.pt = r.partOf(name, d.typ)
	d.k, d.hist, d.pass, d.drop = r.classify(d.typ, d.pt, p)
	switch pass, drop := d.pass, d.drop; {
	case pass != "":
		d.v.Reason = pass // written as it is
	case drop != "":
		d.v = r.dropped(drop)
	case r.cfg.KeepInput:
		d.v = stage.Verdict{Action: stage.ActionCopy, Reason: r.reason}
	default:
		d.v = stage.Verdict{Action: stage.ActionAggregate, Reason: r.reason}
	}
}

// inScope reports whether series p of tenant is the rule's: its tenants
// and its matchers (the metric name routed it here).
func (r *rule) inScope(tenant string, p *parsed) bool {
	return r.appliesTo(tenant) && r.matches(p)
}

// describeReason is the reason of an aggregating verdict.
func describeReason(c RuleConfig) string {
	return fmt.Sprintf("aggregation %s: %s every %s", c.Name, strings.Join(c.outputs(), ","), c.Interval)
}

// Consume implements stage.Consumer: it decides for the series of entry
// ent and folds its samples when the rule takes it. It reads the series
// from ent (in.Labels are not needed); the type comes from the entry, the
// family's remembered metadata or the rule's declared type.
func (r *rule) Consume(in *stage.Input, ent *record.Entry) stage.Verdict {
	p := r.e.scratch.Get().(*parsed)
	defer r.e.scratch.Put(p)
	if !p.parse(ent.Series) {
		r.m.pass(ReasonUnsupported, ent.Count())
		return stage.Verdict{Reason: ReasonUnsupported}
	}
	var d decision
	r.consume(in.Tenant, p.name(), ent, p, &d)
	return d.verdict(in.WantLabels)
}

// consume is Consume of an entry already decoded into p, whose metric
// name is name (valid during the call: a new group copies it), with the
// outcome left in d (d.v: the verdict), counted in
// promgov_rule_series_total: the engine decodes an entry once for all the
// rules reading it (Engine.entry).
func (r *rule) consume(tenant, name string, ent *record.Entry, p *parsed, d *decision) {
	if !r.inScope(tenant, p) || !r.owns(p) {
		*d = decision{}
		return
	}
	r.decide(tenant, name, p, d)
	r.e.fold(r, tenant, name, ent.Hash, p, d)
	r.m.verdict(d.v.Action)
}

// Eval implements stage.Stage: what the rule would do with the series in
// (a native histogram when its type is histogram and it is named as the
// family), without consuming anything. With in.WantLabels, the verdict's
// Labels are the first output series it would fold into.
func (r *rule) Eval(in *stage.Input) stage.Verdict {
	name := in.Labels.Get(model.MetricNameLabel)
	typ := metricTypes[string(in.Meta.Type)]
	p := describedSeries(in.Labels, typ, typ == writev2.Metadata_METRIC_TYPE_HISTOGRAM && name == r.family)
	if !r.inScope(in.Tenant, p) {
		return stage.Verdict{}
	}
	var d decision
	r.decide(in.Tenant, name, p, &d)
	if in.WantLabels && d.v.Action != "" && d.v.Action != stage.ActionDrop {
		d.v.Labels = r.outputLabels(name, d.pt, r.keptLabels(d.pt, p))[0]
	}
	return d.v
}

// describedSeries is a series with labels ls and one sample (a native
// histogram when hist) of type typ, as decide reads it.
func describedSeries(ls labels.Labels, typ writev2.Metadata_MetricType, hist bool) *parsed {
	p := &parsed{typ: typ}
	ls.Range(func(l labels.Label) {
		p.labels = append(p.labels, label{name: []byte(l.Name), value: []byte(l.Value)})
	})
	if hist {
		p.hists = [][]byte{nil}
	} else {
		p.samples = []sample{{}}
	}
	return p
}

// keptLabels is the labels of p that survive into r's output, sorted.
func (r *rule) keptLabels(pt part, p *parsed) []labels.Label {
	var kept []labels.Label
	for _, l := range p.labels {
		if v, ok := r.kept(l, pt, p); ok {
			kept = append(kept, labels.Label{Name: string(l.name), Value: string(v)})
		}
	}
	return sortedKept(kept)
}

// overflowStage is the overflow aggregation as a stage.Consumer, over the
// rule set of one call of Overflow: a series handed to it (one a
// per-metric limit refused) is folded into the series with its
// overflowing labels set to __overflow__ when labelsOf (the cardinality
// policy) says its metric overflows.
type overflowStage struct {
	e        *Engine
	set      *ruleSet
	labelsOf func(tenant, metric string) ([]string, bool)
}

// Consume implements stage.Consumer: the overflow rule that owns the
// entry's time folds it (the one in force, or a version leaving).
func (s *overflowStage) Consume(in *stage.Input, ent *record.Entry) stage.Verdict {
	// A copy: labelsOf is the cardinality policy's code, which must not
	// be handed a view of the entry.
	name := string(record.MetricName(ent.Series))
	ls, ok := s.labelsOf(in.Tenant, name)
	if !ok {
		return stage.Verdict{}
	}
	p := s.e.scratch.Get().(*parsed)
	defer s.e.scratch.Put(p)
	if !p.parse(ent.Series) {
		return stage.Verdict{Reason: ReasonUnsupported}
	}
	p.overflow = ls
	defer func() { p.overflow = nil }()
	for _, r := range s.set.overflows {
		if r.owns(p) {
			var d decision
			r.consume(in.Tenant, name, ent, p, &d)
			return d.verdict(in.WantLabels)
		}
	}
	return stage.Verdict{}
}

// Eval implements stage.Stage: what the overflow aggregation would do with
// the series in, were a per-metric limit to refuse it.
func (s *overflowStage) Eval(in *stage.Input) stage.Verdict {
	if len(s.set.overflows) == 0 {
		return stage.Verdict{}
	}
	name := in.Labels.Get(model.MetricNameLabel)
	ls, ok := s.labelsOf(in.Tenant, name)
	if !ok {
		return stage.Verdict{}
	}
	r := s.set.overflows[0]
	p := describedSeries(in.Labels, metricTypes[string(in.Meta.Type)], false)
	p.overflow = ls
	var d decision
	r.decide(in.Tenant, name, p, &d)
	if in.WantLabels && d.v.Action == stage.ActionAggregate {
		d.v.Labels = r.outputLabels(name, d.pt, r.keptLabels(d.pt, p))[0]
	}
	return d.v
}

// OverflowStage returns the overflow aggregation of the rules in force as
// a stage.Consumer whose policy is labelsOf (which labels of a metric
// overflow; false: the metric does not). Safe for concurrent use.
func (e *Engine) OverflowStage(labelsOf func(tenant, metric string) ([]string, bool)) stage.Consumer {
	return &overflowStage{e: e, set: e.set.Load(), labelsOf: labelsOf}
}

// Stages returns the aggregation rules in force reading metric as
// stage.Consumers, in configuration order.
func (e *Engine) Stages(metric string) []stage.Consumer {
	rs := e.set.Load().byName[metric]
	out := make([]stage.Consumer, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}
