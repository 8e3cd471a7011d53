package usage

import (
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// State is a metric's usage classification.
type State string

// Usage states.
const (
	StateUsed          State = "used"
	StatePartiallyUsed State = "partially_used"
	StateUnused        State = "unused"
)

// Unused reasons.
const (
	// ReasonNoReaders: nothing reads the metric.
	ReasonNoReaders = "no_readers"
	// ReasonDeadRecordingRules: only recording rules whose outputs nobody uses read it.
	ReasonDeadRecordingRules = "only_unused_recording_rules"
)

// LabelCost is the cost of one label of a metric.
type LabelCost struct {
	// Name is the label name.
	Name string
	// Values is the number of distinct values (0: unknown).
	Values uint64
	// SeriesWithout is the metric's series count if the label were dropped
	// (0: unknown). Less than the metric's Series means dropping merges series.
	SeriesWithout uint64
}

// MetricCost is what one metric seen in traffic costs.
type MetricCost struct {
	// Name is the metric name.
	Name string
	// Series is the active series count.
	Series uint64
	// SamplesRate is the ingested samples per second.
	SamplesRate float64
	// Labels are the metric's label names (other than __name__) with costs.
	Labels []LabelCost
	// LimitUse is the largest share of its max_series_per_metric the
	// metric's series take in a tenant, refused series included (0: no
	// limit).
	LimitUse float64
	// RefusedSeries are the series a limit refused (estimated).
	RefusedSeries uint64
}

// CostSource supplies the metrics seen in traffic and their cost (the
// cardinality tracker implements it). Called from the Manager goroutine and
// from API handlers concurrently: implementations must be safe for concurrent use.
type CostSource interface {
	// MetricCosts returns every metric seen in traffic.
	MetricCosts() []MetricCost
}

// StaticCosts is a fixed CostSource (tests, tools).
type StaticCosts []MetricCost

var _ CostSource = StaticCosts(nil)

// MetricCosts implements CostSource.
func (s StaticCosts) MetricCosts() []MetricCost { return s }

// MetricReport is the classification of one metric (the
// /promgov/api/v1/usage/metrics item).
type MetricReport struct {
	// Name is the metric name.
	Name string `json:"name"`
	// State is used, partially_used or unused.
	State State `json:"state"`
	// Series is the active series count (from the CostSource).
	Series uint64 `json:"series"`
	// SamplesRate is samples/s (from the CostSource).
	SamplesRate float64 `json:"samples_rate"`
	// UsedBy lists the readers (recording rules are listed even when dead).
	UsedBy []UsedBy `json:"used_by"`
	// QueryCount is how many queries read the metric.
	QueryCount uint64 `json:"query_count"`
	// LastQueried is when a query last read it (null if never).
	LastQueried *time.Time `json:"last_queried"`
	// Users is the number of distinct querying users (bounded).
	Users int `json:"distinct_users"`
	// UnusedLabels are labels no live reader references (partially_used).
	UnusedLabels []string `json:"unused_labels,omitempty"`
	// ReadLabels are the label names live readers reference (matchers,
	// grouping, legends, variables), sorted.
	ReadLabels []string `json:"read_labels,omitempty"`
	// AllLabels is set when a live reader sees the series with every label
	// (a selector not under a label-reducing aggregation).
	AllLabels bool `json:"all_labels,omitempty"`
	// Reason explains unused: no_readers or only_unused_recording_rules.
	Reason string `json:"reason,omitempty"`
	// LimitUse and RefusedSeries are from the CostSource: the share of its
	// max_series_per_metric the metric takes, and the series refused.
	LimitUse      float64 `json:"limit_use,omitempty"`
	RefusedSeries uint64  `json:"refused_series,omitempty"`

	labels []LabelCost
}

// Report is a full classification.
type Report struct {
	// Metrics are sorted by name.
	Metrics []MetricReport
	// At is when it was computed.
	At time.Time
}

// Classify classifies every metric in costs given the consumers and the
// query statistics. Recording rules are resolved as a graph: a recording
// rule's inputs are live only if its output is live (read by a dashboard,
// alert, query or live recording rule).
func Classify(consumers []Consumer, access AccessSnapshot, costs []MetricCost, now time.Time) *Report {
	// Universe of names: traffic, exact references, recording outputs.
	universe := map[string]struct{}{}
	for _, c := range costs {
		universe[c.Name] = struct{}{}
	}
	for _, c := range consumers {
		for n := range c.Refs.Metrics {
			universe[n] = struct{}{}
		}
		if c.Records != "" {
			universe[c.Records] = struct{}{}
		}
	}
	names := slices.Sorted(maps.Keys(universe))

	// reads[i] = names consumer i reads (exact and resolved patterns).
	reads := make([][]string, len(consumers))
	readers := map[string][]int{}
	for i, c := range consumers {
		seen := map[string]struct{}{}
		for n := range c.Refs.Metrics {
			seen[n] = struct{}{}
		}
		for _, p := range c.Refs.Patterns {
			for _, n := range names {
				if p.Matches(n) {
					seen[n] = struct{}{}
				}
			}
		}
		reads[i] = slices.Sorted(maps.Keys(seen))
		for _, n := range reads[i] {
			readers[n] = append(readers[n], i)
		}
	}
	producers := map[string][]int{}
	for i, c := range consumers {
		if c.Records != "" {
			producers[c.Records] = append(producers[c.Records], i)
		}
	}

	// Query access, with patterns resolved.
	queried := make(map[string]*Access, len(access.Metrics))
	for n, a := range access.Metrics {
		queried[n] = a.clone()
	}
	for _, pa := range access.Patterns {
		for _, n := range names {
			if pa.Pattern.Matches(n) {
				if q, ok := queried[n]; ok {
					q.Merge(pa.Access, math.MaxInt)
				} else {
					queried[n] = pa.Access.clone()
				}
			}
		}
	}

	// Liveness propagation.
	live := map[string]bool{}
	liveConsumer := make([]bool, len(consumers))
	var work []string
	mark := func(n string) {
		if !live[n] {
			live[n] = true
			work = append(work, n)
		}
	}
	for n, a := range queried {
		if a.Count > 0 {
			mark(n)
		}
	}
	for i, c := range consumers {
		if c.Records == "" {
			liveConsumer[i] = true
			for _, n := range reads[i] {
				mark(n)
			}
		}
	}
	for len(work) > 0 {
		n := work[len(work)-1]
		work = work[:len(work)-1]
		for _, i := range producers[n] {
			if liveConsumer[i] {
				continue
			}
			liveConsumer[i] = true
			for _, in := range reads[i] {
				mark(in)
			}
		}
	}

	rep := &Report{At: now, Metrics: make([]MetricReport, 0, len(costs))}
	for _, cost := range costs {
		m := MetricReport{Name: cost.Name, Series: cost.Series, SamplesRate: cost.SamplesRate, UsedBy: []UsedBy{}, labels: cost.Labels,
			LimitUse: cost.LimitUse, RefusedSeries: cost.RefusedSeries}
		seen := map[UsedBy]struct{}{}
		usedLabels := map[string]struct{}{}
		allLabels := false
		for _, i := range readers[cost.Name] {
			c := consumers[i]
			if _, dup := seen[c.UsedBy]; !dup {
				seen[c.UsedBy] = struct{}{}
				m.UsedBy = append(m.UsedBy, c.UsedBy)
			}
			if !liveConsumer[i] {
				continue
			}
			u := useOf(c.Refs, cost.Name)
			maps.Copy(usedLabels, u.Labels)
			allLabels = allLabels || u.AllLabels
		}
		if a, ok := queried[cost.Name]; ok && a.Count > 0 {
			m.QueryCount = a.Count
			last := a.Last
			m.LastQueried = &last
			m.Users = len(a.Users)
			m.UsedBy = append(m.UsedBy, UsedBy{Kind: KindQuery, ID: "queries", Title: "ad-hoc and API queries"})
			maps.Copy(usedLabels, a.Labels)
			allLabels = allLabels || a.AllLabels
		}
		delete(usedLabels, "__name__")
		m.ReadLabels = slices.Sorted(maps.Keys(usedLabels))
		m.AllLabels = allLabels
		switch {
		case !live[cost.Name]:
			m.State = StateUnused
			m.Reason = ReasonNoReaders
			if len(m.UsedBy) > 0 {
				m.Reason = ReasonDeadRecordingRules
			}
		case allLabels:
			m.State = StateUsed
		default:
			for _, l := range cost.Labels {
				if _, ok := usedLabels[l.Name]; !ok && l.Name != "__name__" {
					m.UnusedLabels = append(m.UnusedLabels, l.Name)
				}
			}
			sort.Strings(m.UnusedLabels)
			m.State = StateUsed
			if len(m.UnusedLabels) > 0 {
				m.State = StatePartiallyUsed
			}
		}
		rep.Metrics = append(rep.Metrics, m)
	}
	sort.Slice(rep.Metrics, func(i, j int) bool { return rep.Metrics[i].Name < rep.Metrics[j].Name })
	return rep
}

// useOf returns how refs use name, merging exact and pattern uses.
func useOf(refs *promqlx.Refs, name string) *promqlx.MetricUse {
	u := &promqlx.MetricUse{Labels: map[string]struct{}{}}
	if mu, ok := refs.Metrics[name]; ok {
		maps.Copy(u.Labels, mu.Labels)
		u.AllLabels = mu.AllLabels
	}
	for _, p := range refs.Patterns {
		if p.Matches(name) {
			maps.Copy(u.Labels, p.Use.Labels)
			u.AllLabels = u.AllLabels || p.Use.AllLabels
		}
	}
	return u
}

// Filter returns the metrics in state (all when state is ""), sorted by
// sortBy: "series" (desc), "samples_rate" (desc), "query_count" (desc) or name.
func (r *Report) Filter(state State, sortBy string) []MetricReport {
	out := make([]MetricReport, 0, len(r.Metrics))
	for _, m := range r.Metrics {
		if state == "" || m.State == state {
			out = append(out, m)
		}
	}
	less := func(a, b MetricReport) bool { return a.Name < b.Name }
	switch strings.ToLower(sortBy) {
	case "series":
		less = func(a, b MetricReport) bool {
			if a.Series != b.Series {
				return a.Series > b.Series
			}
			return a.Name < b.Name
		}
	case "samples_rate":
		less = func(a, b MetricReport) bool {
			if a.SamplesRate != b.SamplesRate {
				return a.SamplesRate > b.SamplesRate
			}
			return a.Name < b.Name
		}
	case "query_count":
		less = func(a, b MetricReport) bool {
			if a.QueryCount != b.QueryCount {
				return a.QueryCount > b.QueryCount
			}
			return a.Name < b.Name
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}
