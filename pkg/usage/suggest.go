package usage

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promgov/promgov/pkg/aggregate"
)

// Suggestion kinds.
const (
	// SuggestDropMetrics drops an unused metric family.
	SuggestDropMetrics = "drop_metrics"
	// SuggestLabelDrop removes a label no reader of any metric carrying it
	// uses, from exactly the metrics it names.
	SuggestLabelDrop = "labeldrop"
	// SuggestMetricLabelDrop removes one unused label from one metric only
	// (the label is used on other metrics).
	SuggestMetricLabelDrop = "labeldrop_metric"
	// SuggestAggregation aggregates an unused label away: dropping it would
	// merge series (two values for one series and timestamp, counters
	// broken), so the suggestion is an aggregation rule per metric
	// (docs/aggregation.md), not a labeldrop.
	SuggestAggregation = "aggregation"
	// SuggestLimitAggregation relieves a metric over or near its
	// max_series_per_metric (a top offender): its label whose aggregation
	// saves the most series is aggregated away, whether readers use it or
	// not (ReadersAffected says when they do).
	SuggestLimitAggregation = "limit_aggregation"
)

// NearLimitShare is the share of its max_series_per_metric from which a
// metric is near its limit and gets a limit_aggregation suggestion.
const NearLimitShare = 0.8

// SuggestedAggregationInterval is the interval of suggested aggregation
// rules.
const SuggestedAggregationInterval = time.Minute

// RelabelRule is a Prometheus relabel_config (write_relabel_configs /
// metric_relabel_configs) in its YAML/JSON field names.
type RelabelRule struct {
	// SourceLabels are concatenated and matched against Regex.
	SourceLabels []string `json:"source_labels,omitempty" yaml:"source_labels,omitempty"`
	// Regex is the (anchored) regular expression.
	Regex string `json:"regex,omitempty" yaml:"regex,omitempty"`
	// TargetLabel is written by replace.
	TargetLabel string `json:"target_label,omitempty" yaml:"target_label,omitempty"`
	// Replacement is the replace value ("" removes the label).
	Replacement *string `json:"replacement,omitempty" yaml:"replacement,omitempty"`
	// Action is drop or replace.
	Action string `json:"action" yaml:"action"`
}

// Suggestion is a ready-to-use rule with what it saves. Its rules match
// exactly the metrics it names (source_labels [__name__], an anchored
// alternation of the names), never every series sent.
type Suggestion struct {
	// ID identifies the suggestion while the traffic and usage it comes
	// from stay the same: a hash of its kind, metrics and labels
	// (SuggestionID). POST /promgov/api/v1/suggestions/{id}/propose names it.
	ID string `json:"id"`
	// Kind is drop_metrics, labeldrop or labeldrop_metric.
	Kind string `json:"kind"`
	// Metrics are the affected metric names: exactly those the rules match.
	Metrics []string `json:"metrics"`
	// Labels are the dropped labels (label suggestions).
	Labels []string `json:"labels,omitempty"`
	// Rules are write_relabel_configs / metric_relabel_configs entries.
	Rules []RelabelRule `json:"rules"`
	// SeriesSaved is the active series the rule removes; always positive.
	SeriesSaved uint64 `json:"series_saved"`
	// SamplesRateSaved is the samples/s the rule removes.
	SamplesRateSaved float64 `json:"samples_rate_saved"`
	// MergesSeries is set when dropping the label makes distinct series
	// collide into one (which is what a label suggestion saves).
	MergesSeries bool `json:"merges_series"`
	// Aggregations are the `aggregations:` entries of an aggregation
	// suggestion, one per metric.
	Aggregations []aggregate.RuleConfig `json:"aggregations,omitempty"`
	// ReadersAffected is set on a limit_aggregation whose label a live
	// reader (dashboard, rule, query) uses: they would see it no more.
	ReadersAffected bool `json:"readers_affected,omitempty"`
	// LimitUse is, for a limit_aggregation, the metric's series (refused
	// ones included) over its max_series_per_metric.
	LimitUse float64 `json:"limit_use,omitempty"`
}

// familySuffixes are the suffixes of histogram/summary/counter components.
var familySuffixes = []string{"_bucket", "_count", "_sum", "_created", "_total", "_info"}

func family(name string) string {
	for _, s := range familySuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			return strings.TrimSuffix(name, s)
		}
	}
	return name
}

// Suggest derives suggestions from a report: every suggestion saves at
// least one series and its rules are scoped to exactly the metrics it
// names. They are ranked by series saved, then samples/s saved; callers
// cap the list (the API: DefaultSuggestionLimit).
//
// A metric or label whose saving is zero or unknown (an unused metric with
// no series, a label that is constant or determined by the others, a label
// without a series_without estimate) is left out.
func Suggest(r *Report) []Suggestion {
	out := suggestDropMetrics(r)
	out = append(out, suggestLabelDrops(r)...)
	out = append(out, suggestLimitRelief(r, out)...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.SeriesSaved != b.SeriesSaved {
			return a.SeriesSaved > b.SeriesSaved
		}
		if a.SamplesRateSaved != b.SamplesRateSaved {
			return a.SamplesRateSaved > b.SamplesRateSaved
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if c := slices.Compare(a.Metrics, b.Metrics); c != 0 {
			return c < 0
		}
		return slices.Compare(a.Labels, b.Labels) < 0
	})
	for i := range out {
		out[i].ID = SuggestionID(out[i])
	}
	return out
}

// suggestDropMetrics drops unused metric families: all members of a family
// nobody reads together, members of a partly used family one by one.
func suggestDropMetrics(r *Report) []Suggestion {
	type fam struct {
		unused []MetricReport
		used   bool
	}
	fams := map[string]*fam{}
	for _, m := range r.Metrics {
		f := fams[family(m.Name)]
		if f == nil {
			f = &fam{}
			fams[family(m.Name)] = f
		}
		switch {
		case m.State != StateUnused:
			f.used = true
		case m.Series > 0: // one without series saves nothing
			f.unused = append(f.unused, m)
		}
	}
	var out []Suggestion
	for _, f := range fams {
		for _, g := range groups(f.unused, f.used) {
			s := Suggestion{Kind: SuggestDropMetrics}
			for _, m := range g {
				s.Metrics = append(s.Metrics, m.Name)
				s.SeriesSaved += m.Series
				s.SamplesRateSaved += m.SamplesRate
			}
			sort.Strings(s.Metrics)
			s.Rules = []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: alternation(s.Metrics), Action: "drop"}}
			out = append(out, s)
		}
	}
	return out
}

// suggestLabelDrops removes labels no live reader uses: one suggestion per
// label over every metric where it is unused and dropping it saves series
// when no metric's reader uses it, else one per metric.
func suggestLabelDrops(r *Report) []Suggestion {
	type saving struct {
		metric string
		series uint64
		rate   float64
	}
	type lab struct {
		savings []saving
		usedIn  int
	}
	labs := map[string]*lab{}
	for _, m := range r.Metrics {
		if m.State == StateUnused {
			continue // dropped wholesale by a drop_metrics suggestion
		}
		for _, lc := range m.labels {
			l := labs[lc.Name]
			if l == nil {
				l = &lab{}
				labs[lc.Name] = l
			}
			if !slices.Contains(m.UnusedLabels, lc.Name) {
				l.usedIn++
				continue
			}
			if series, rate := labelSaving(m, lc); series > 0 {
				l.savings = append(l.savings, saving{m.Name, series, rate})
			}
		}
	}
	// Every saving merges series: the label is aggregated away, not
	// dropped (a labeldrop would write two values per series and
	// timestamp).
	var out []Suggestion
	for name, l := range labs {
		for _, g := range groups(l.savings, l.usedIn > 0) {
			s := Suggestion{Kind: SuggestAggregation, Labels: []string{name}, MergesSeries: true}
			sort.Slice(g, func(i, j int) bool { return g[i].metric < g[j].metric })
			for _, sv := range g {
				s.Metrics = append(s.Metrics, sv.metric)
				s.SeriesSaved += sv.series
				s.SamplesRateSaved += sv.rate
				s.Aggregations = append(s.Aggregations, aggregationRule(sv.metric, name))
			}
			out = append(out, s)
		}
	}
	return out
}

// aggregationRule is the aggregation rule removing label from metric (a
// histogram's or summary's series are aggregated by family).
func aggregationRule(metric, label string) aggregate.RuleConfig {
	match := metric
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(metric, suf); ok && base != "" {
			match = base
		}
	}
	return aggregate.RuleConfig{
		Name: match + "_without_" + label, Match: match, Without: []string{label},
		Interval: model.Duration(SuggestedAggregationInterval),
	}
}

// groups returns items as one group or, when split, one group per item;
// never an empty group.
func groups[T any](items []T, split bool) [][]T {
	if len(items) == 0 {
		return nil
	}
	if !split {
		return [][]T{items}
	}
	out := make([][]T, len(items))
	for i, it := range items {
		out[i] = []T{it}
	}
	return out
}

// suggestLimitRelief suggests, for every metric over its limit (refusing
// series) or near it (NearLimitShare), aggregating away the label that
// saves the most series, unless an aggregation suggestion (of an unused
// label) already covers that metric and label.
func suggestLimitRelief(r *Report, have []Suggestion) []Suggestion {
	covered := map[[2]string]bool{}
	for _, s := range have {
		if s.Kind == SuggestAggregation {
			for _, m := range s.Metrics {
				covered[[2]string{m, s.Labels[0]}] = true
			}
		}
	}
	var out []Suggestion
	for _, m := range r.Metrics {
		if m.State == StateUnused || (m.RefusedSeries == 0 && m.LimitUse < NearLimitShare) {
			continue
		}
		var best LabelCost
		var bestSeries uint64
		var bestRate float64
		for _, lc := range m.labels {
			if lc.Name == "le" || lc.Name == "quantile" {
				continue // a histogram's or summary's structure
			}
			if series, rate := labelSaving(m, lc); series > bestSeries || series == bestSeries && series > 0 && lc.Name < best.Name {
				best, bestSeries, bestRate = lc, series, rate
			}
		}
		if bestSeries == 0 || covered[[2]string{m.Name, best.Name}] {
			continue
		}
		out = append(out, Suggestion{
			Kind: SuggestLimitAggregation, Metrics: []string{m.Name}, Labels: []string{best.Name},
			SeriesSaved: bestSeries, SamplesRateSaved: bestRate, MergesSeries: true,
			Aggregations:    []aggregate.RuleConfig{aggregationRule(m.Name, best.Name)},
			ReadersAffected: m.AllLabels || slices.Contains(m.ReadLabels, best.Name),
			LimitUse:        m.LimitUse,
		})
	}
	return out
}

// labelSaving is what aggregating lc away from m saves: the series that
// collide into others, and the samples/s: m's input samples minus one
// output sample per remaining series and aggregation interval. Zero when the label never
// distinguishes series (one value, or determined by the other labels) or
// when that is unknown (no series_without estimate).
func labelSaving(m MetricReport, lc LabelCost) (series uint64, rate float64) {
	if lc.Values == 1 || lc.SeriesWithout == 0 || lc.SeriesWithout >= m.Series {
		return 0, 0
	}
	series = m.Series - lc.SeriesWithout
	return series, max(0, m.SamplesRate-float64(lc.SeriesWithout)/SuggestedAggregationInterval.Seconds())
}

func alternation(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	sort.Strings(q)
	return strings.Join(q, "|")
}

// SuggestionID is the ID of a suggestion: the first 12 hex digits of the
// SHA-256 of its kind, metrics and labels.
func SuggestionID(s Suggestion) string {
	h := sha256.New()
	h.Write([]byte(s.Kind))
	for _, part := range [][]string{s.Metrics, s.Labels} {
		h.Write([]byte{0})
		h.Write([]byte(strings.Join(part, "\x01")))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
