package aggregate

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/stage"
)

// part is which series of a metric family an input is.
type part uint8

const (
	partWhole  part = iota // the family's own name: counters, gauges, native histograms, summary quantiles
	partBucket             // <family>_bucket
	partSum                // <family>_sum
	partCount              // <family>_count
)

var partSuffix = [...]string{partWhole: "", partBucket: "_bucket", partSum: "_sum", partCount: "_count"}

// rule is a compiled aggregation rule and its state. mu guards the state.
type rule struct {
	cfg         RuleConfig
	family      string
	matchers    []*labels.Matcher // besides the metric name
	tenants     map[string]bool   // nil: every tenant
	by, without map[string]bool
	interval    int64 // ms
	maxDelay    int64 // ms
	outputs     []string
	outNames    [len(partSuffix)][]string // output metric names per part
	fingerprint uint64                    // of the configuration, to match snapshots
	enforce     bool
	reason      string  // of its aggregating verdicts
	e           *Engine // the engine running it (types, group limit, scratch)
	// overflow: the built-in __overflow__ aggregation, which keeps every
	// label, sets the overflowing ones to __overflow__ and keeps the
	// metric's name.
	overflow bool

	mu     sync.Mutex
	groups map[string]*group // key: groupKey
	// closed is the end (ms) of the last closed interval: samples before it
	// are late.
	closed int64
	keyBuf []byte
	m      *ruleMetrics

	// Reload hand-over (reload.go). until, on a rule a reload replaced or
	// removed, is where its time ends: the end (ms) of the last interval it
	// still aggregates; 0 while the rule is in force.
	until atomic.Int64
	// next is the rule that replaced this one (nil: removed); set under
	// e.setMu.
	next atomic.Pointer[rule]
	// retired: the rule closed its last interval and gave its state up.
	// r.mu.
	retired bool
	// A replacement takes over at from (its predecessor's until): while
	// handing is set (the predecessor still aggregates), entries before
	// from are the predecessor's. prev is the predecessor, whose input
	// bases the replacement takes over (r.mu), for inputExpiry after from.
	from    int64
	handing atomic.Bool
	prev    *rule
	join    bool // take prev's input bases (a changed rule, not one added again)
}

// compile builds a rule from its (validated) configuration.
func compile(c RuleConfig) (*rule, error) {
	name, ms, err := parseMatch(c.Match)
	if err != nil {
		return nil, err
	}
	r := &rule{
		cfg:      c,
		family:   name,
		matchers: ms,
		interval: time.Duration(c.Interval).Milliseconds(),
		outputs:  c.outputs(),
		enforce:  c.Mode != ModeShadow,
		reason:   describeReason(c),
		groups:   map[string]*group{},
	}
	r.maxDelay = time.Duration(c.MaxDelay).Milliseconds()
	if c.MaxDelay == 0 {
		r.maxDelay = defaultMaxDelay(time.Duration(c.Interval)).Milliseconds()
	}
	if len(c.Tenants) > 0 {
		r.tenants = map[string]bool{}
		for _, t := range c.Tenants {
			r.tenants[t] = true
		}
	}
	if len(c.By) > 0 {
		r.by = map[string]bool{}
		for _, l := range c.By {
			r.by[l] = true
		}
	} else {
		r.without = map[string]bool{}
		for _, l := range c.Without {
			r.without[l] = true
		}
	}
	for p := range partSuffix {
		names := c.OutputNames(name)
		for i := range names {
			names[i] += partSuffix[p]
		}
		r.outNames[p] = names
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fingerprint rule %s: %w", c.Name, err)
	}
	h := fnv.New64a()
	h.Write(b)
	r.fingerprint = h.Sum64()
	return r, nil
}

// inputNames is the metric names the rule reads: the family, and its
// _bucket, _sum and _count series unless the declared type rules them out.
func (r *rule) inputNames() []string {
	names := []string{r.family}
	if r.cfg.Type == "" || r.cfg.Type == TypeHistogram || r.cfg.Type == TypeSummary {
		for _, p := range []part{partBucket, partSum, partCount} {
			if p == partBucket && r.cfg.Type == TypeSummary {
				continue
			}
			names = append(names, r.family+partSuffix[p])
		}
	}
	return names
}

// keeps reports whether an input label survives into the output.
func (r *rule) keeps(name []byte, p part) bool {
	if string(name) == "__name__" {
		return false
	}
	if p == partBucket && string(name) == "le" {
		return true
	}
	if r.by != nil {
		return r.by[string(name)]
	}
	return !r.without[string(name)]
}

// kept returns the value an input label has in the output, and whether it
// is kept at all.
func (r *rule) kept(l label, pt part, p *parsed) ([]byte, bool) {
	if r.overflow {
		if string(l.name) == "__name__" {
			return nil, false
		}
		for _, o := range p.overflow {
			if string(l.name) == o {
				return overflowValue, true
			}
		}
		return l.value, true
	}
	return l.value, r.keeps(l.name, pt)
}

var overflowValue = []byte(OverflowValue)

// matches reports whether the series' labels satisfy the matchers.
func (r *rule) matches(p *parsed) bool {
	for _, m := range r.matchers {
		v, _ := p.value(m.Name)
		if !m.Matches(string(v)) {
			return false
		}
	}
	return true
}

// dropped is the verdict of a rule dropping an input for reason: taken
// out of the write, unless the rule keeps its input.
func (r *rule) dropped(reason string) stage.Verdict {
	if r.cfg.KeepInput {
		return stage.Verdict{Reason: reason}
	}
	return stage.Verdict{Action: stage.ActionDrop, Reason: reason}
}

// appliesTo reports whether the rule covers tenant.
func (r *rule) appliesTo(tenant string) bool { return r.tenants == nil || r.tenants[tenant] }

// outputLabels builds, for each output of a group, its labels: the output
// name, the kept labels (sorted, as the input's are) and the marker label.
func (r *rule) outputLabels(metric string, p part, kept []labels.Label) []labels.Labels {
	out := make([]labels.Labels, len(r.outputs))
	for i := range r.outputs {
		b := labels.NewScratchBuilder(len(kept) + 2)
		name := r.outNames[p][i]
		if r.overflow {
			name = metric
		}
		b.Add(model.MetricNameLabel, name)
		for _, l := range kept {
			b.Add(l.Name, l.Value)
		}
		if r.cfg.MarkerLabel != "" {
			b.Add(r.cfg.MarkerLabel, r.cfg.Name)
		}
		b.Sort()
		out[i] = b.Labels()
	}
	return out
}

// sortedKept returns kept sorted by name (input labels are sorted already;
// this guards hand-built inputs).
func sortedKept(kept []labels.Label) []labels.Label {
	slices.SortFunc(kept, func(a, b labels.Label) int { return strings.Compare(a.Name, b.Name) })
	return kept
}
