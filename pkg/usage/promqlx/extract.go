package promqlx

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// MetricUse describes how one metric (or name pattern) is used.
type MetricUse struct {
	// Labels are the label names referenced: matchers, by/without, on/ignoring,
	// group_left/right, label_replace/label_join sources, legends, variables.
	Labels map[string]struct{}
	// AllLabels is set when at least one selector returns the series with all
	// their labels (not under a label-reducing aggregation), so every label is
	// potentially visible to the reader.
	AllLabels bool
}

func (u *MetricUse) merge(o *MetricUse) {
	if u.Labels == nil {
		u.Labels = map[string]struct{}{}
	}
	maps.Copy(u.Labels, o.Labels)
	u.AllLabels = u.AllLabels || o.AllLabels
}

// AddLabels records extra referenced label names (for example from a legend).
func (u *MetricUse) AddLabels(names ...string) {
	if u.Labels == nil {
		u.Labels = map[string]struct{}{}
	}
	for _, n := range names {
		if n != "" && n != model.MetricNameLabel && !strings.Contains(n, Placeholder) {
			u.Labels[n] = struct{}{}
		}
	}
}

// LabelNames returns the referenced label names, sorted.
func (u *MetricUse) LabelNames() []string {
	return slices.Sorted(maps.Keys(u.Labels))
}

// Pattern is a metric name matcher that is not a plain name: {__name__=~"re"},
// a variable in the metric name, or a selector without a name at all. It is
// resolved against the metric names seen in traffic. Patterns built with
// NewPattern are immutable and safe for concurrent use.
type Pattern struct {
	// Regex is the name regex source (as written in PromQL; anchored when matching).
	Regex string
	// Negative is set for != and !~ name matchers.
	Negative bool
	// Use is how matching metrics are used.
	Use MetricUse

	re       *regexp.Regexp
	compiled bool
}

// NewPattern returns a compiled pattern.
func NewPattern(regex string, negative bool, use MetricUse) *Pattern {
	p := &Pattern{Regex: regex, Negative: negative, Use: use, compiled: true}
	p.re, _ = regexp.Compile("^(?:" + regex + ")$")
	return p
}

// Matches reports whether the metric name matches the pattern. A pattern
// whose regex does not compile matches everything (fail safe).
func (p *Pattern) Matches(name string) bool {
	re := p.re
	if !p.compiled {
		re, _ = regexp.Compile("^(?:" + p.Regex + ")$")
	}
	if re == nil {
		return true
	}
	return re.MatchString(name) != p.Negative
}

// Refs is everything an expression (or a set of them) reads.
type Refs struct {
	// Metrics maps exact metric names to their use.
	Metrics map[string]*MetricUse
	// Patterns are name matchers resolved against traffic later.
	Patterns []*Pattern
}

// NewRefs returns empty Refs.
func NewRefs() *Refs { return &Refs{Metrics: map[string]*MetricUse{}} }

// Names returns the exact metric names, sorted.
func (r *Refs) Names() []string { return slices.Sorted(maps.Keys(r.Metrics)) }

// Merge adds o into r.
func (r *Refs) Merge(o *Refs) {
	if o == nil {
		return
	}
	for n, u := range o.Metrics {
		r.metric(n).merge(u)
	}
	r.Patterns = append(r.Patterns, o.Patterns...)
}

// AddLabels records label names as referenced for every metric and pattern in r.
func (r *Refs) AddLabels(names ...string) {
	for _, u := range r.Metrics {
		u.AddLabels(names...)
	}
	for _, p := range r.Patterns {
		p.Use.AddLabels(names...)
	}
}

func (r *Refs) metric(name string) *MetricUse {
	u, ok := r.Metrics[name]
	if !ok {
		u = &MetricUse{Labels: map[string]struct{}{}}
		r.Metrics[name] = u
	}
	return u
}

// Parse substitutes Grafana variables in expr and parses it. Variables in
// value-like positions are tried first as identifiers, then as numbers.
func Parse(expr string) (parser.Expr, error) {
	p := parser.NewParser(parser.Options{EnableExperimentalFunctions: true, EnableBinopFillModifiers: true})
	e, err := p.ParseExpr(Substitute(expr, false))
	if err == nil {
		return e, nil
	}
	if len(scanVars(expr)) > 0 {
		if e2, err2 := p.ParseExpr(Substitute(expr, true)); err2 == nil {
			return e2, nil
		}
	}
	return nil, fmt.Errorf("parse %q: %w", truncate(expr, 200), err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Extract parses expr (after Grafana substitution) and returns what it reads.
func Extract(expr string) (*Refs, error) {
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	r := NewRefs()
	walk(r, e, walkCtx{})
	return r, nil
}

// ExtractSelectors extracts the metrics read by series selectors such as the
// match[] parameters of /api/v1/series.
func ExtractSelectors(sels ...string) (*Refs, error) {
	r := NewRefs()
	for _, s := range sels {
		sr, err := Extract(s)
		if err != nil {
			return nil, err
		}
		r.Merge(sr)
	}
	return r, nil
}

type walkCtx struct {
	labels  []string
	reduced bool
}

func (c walkCtx) with(ls []string, reduce bool) walkCtx {
	n := walkCtx{labels: append(slices.Clip(c.labels), ls...), reduced: c.reduced || reduce}
	return n
}

// reducingAggs are aggregations whose output keeps only the grouping labels.
var reducingAggs = map[parser.ItemType]bool{
	parser.SUM: true, parser.AVG: true, parser.COUNT: true, parser.MIN: true, parser.MAX: true,
	parser.STDDEV: true, parser.STDVAR: true, parser.GROUP: true, parser.QUANTILE: true,
	parser.COUNT_VALUES: true,
}

func walk(r *Refs, node parser.Node, c walkCtx) {
	switch n := node.(type) {
	case nil:
		return
	case *parser.VectorSelector:
		addSelector(r, n, c)
		return
	case *parser.AggregateExpr:
		nc := c.with(n.Grouping, reducingAggs[n.Op] && !n.Without)
		walk(r, n.Expr, nc)
		walk(r, n.Param, c)
		return
	case *parser.Call:
		var extra []string
		reduce := false
		switch n.Func.Name {
		case "label_replace":
			extra = stringArgs(n.Args, 3, 4)
		case "label_join":
			extra = stringArgs(n.Args, 3, len(n.Args))
		case "sort_by_label", "sort_by_label_desc":
			extra = stringArgs(n.Args, 1, len(n.Args))
		case "absent", "absent_over_time", "scalar":
			reduce = true
		}
		nc := c.with(extra, reduce)
		for _, a := range n.Args {
			walk(r, a, nc)
		}
		return
	case *parser.BinaryExpr:
		nc := c
		if vm := n.VectorMatching; vm != nil {
			nc = c.with(append(slices.Clip(vm.MatchingLabels), vm.Include...), false)
		}
		walk(r, n.LHS, nc)
		walk(r, n.RHS, nc)
		return
	}
	for child := range parser.ChildrenIter(node) {
		walk(r, child, c)
	}
}

func stringArgs(args parser.Expressions, from, to int) []string {
	var out []string
	for i := from; i < to && i < len(args); i++ {
		if s, ok := args[i].(*parser.StringLiteral); ok {
			out = append(out, s.Val)
		}
	}
	return out
}

func addSelector(r *Refs, vs *parser.VectorSelector, c walkCtx) {
	use := &MetricUse{Labels: map[string]struct{}{}, AllLabels: !c.reduced}
	use.AddLabels(c.labels...)
	var nameMatchers []*labels.Matcher
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			nameMatchers = append(nameMatchers, m)
			continue
		}
		use.AddLabels(m.Name)
	}
	if vs.Name != "" && !strings.Contains(vs.Name, Placeholder) {
		r.metric(vs.Name).merge(use)
		return
	}
	if vs.Name != "" {
		r.Patterns = append(r.Patterns, NewPattern(placeholderRegex(regexp.QuoteMeta(vs.Name)), false, *use))
		return
	}
	// Selector without a literal name: use the __name__ matchers.
	var exact string
	for _, m := range nameMatchers {
		if m.Type == labels.MatchEqual && !strings.Contains(m.Value, Placeholder) {
			exact = m.Value
		}
	}
	if exact != "" {
		r.metric(exact).merge(use)
		return
	}
	if len(nameMatchers) == 0 {
		r.Patterns = append(r.Patterns, NewPattern(".*", false, *use))
		return
	}
	for _, m := range nameMatchers {
		regex, negative := ".*", false
		switch m.Type {
		case labels.MatchEqual:
			regex = placeholderRegex(regexp.QuoteMeta(m.Value))
		case labels.MatchNotEqual:
			if !strings.Contains(m.Value, Placeholder) {
				regex, negative = regexp.QuoteMeta(m.Value), true
			}
		case labels.MatchRegexp:
			regex = placeholderRegex(m.Value)
		case labels.MatchNotRegexp:
			if !strings.Contains(m.Value, Placeholder) {
				regex, negative = m.Value, true
			}
		}
		r.Patterns = append(r.Patterns, NewPattern(regex, negative, *use))
	}
}

// placeholderRegex turns the variable placeholder (possibly regex-quoted) into ".*".
func placeholderRegex(s string) string {
	s = strings.ReplaceAll(s, regexp.QuoteMeta(Placeholder), ".*")
	return strings.ReplaceAll(s, Placeholder, ".*")
}
