package usage

import (
	"regexp"
	"sort"
	"strings"
)

// Suggestion kinds.
const (
	// SuggestDropMetrics drops an unused metric family.
	SuggestDropMetrics = "drop_metrics"
	// SuggestLabelDrop drops a label no reader of any metric carrying it uses.
	SuggestLabelDrop = "labeldrop"
	// SuggestMetricLabelDrop removes one unused label from one metric only.
	SuggestMetricLabelDrop = "labeldrop_metric"
)

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
	// Action is drop, labeldrop or replace.
	Action string `json:"action" yaml:"action"`
}

// Suggestion is a ready-to-use rule with what it saves.
type Suggestion struct {
	// Kind is drop_metrics, labeldrop or labeldrop_metric.
	Kind string `json:"kind"`
	// Metrics are the affected metric names.
	Metrics []string `json:"metrics"`
	// Labels are the dropped labels (label suggestions).
	Labels []string `json:"labels,omitempty"`
	// Rules are write_relabel_configs / metric_relabel_configs entries.
	Rules []RelabelRule `json:"rules"`
	// SeriesSaved is the active series the rule removes.
	SeriesSaved uint64 `json:"series_saved"`
	// SamplesRateSaved is the samples/s the rule removes.
	SamplesRateSaved float64 `json:"samples_rate_saved"`
	// MergesSeries is set when dropping the label makes distinct series
	// collide (or when that is unknown: see MergeUnknown).
	MergesSeries bool `json:"merges_series"`
	// MergeUnknown is set when the label's effect on series identity is not known.
	MergeUnknown bool `json:"merge_unknown,omitempty"`
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

// Suggest derives suggestions from a report, sorted by series saved.
func Suggest(r *Report) []Suggestion {
	var out []Suggestion

	// Drop unused metric families (all members unused).
	type fam struct {
		names  []string
		series uint64
		rate   float64
		used   bool
	}
	fams := map[string]*fam{}
	for _, m := range r.Metrics {
		f := fams[family(m.Name)]
		if f == nil {
			f = &fam{}
			fams[family(m.Name)] = f
		}
		if m.State != StateUnused {
			f.used = true
			continue
		}
		f.names = append(f.names, m.Name)
		f.series += m.Series
		f.rate += m.SamplesRate
	}
	for _, f := range fams {
		if len(f.names) == 0 {
			continue
		}
		// Members of a partly used family are suggested one by one.
		groups := [][]string{f.names}
		if f.used {
			groups = groups[:0]
			for _, n := range f.names {
				groups = append(groups, []string{n})
			}
		}
		for _, g := range groups {
			s := Suggestion{Kind: SuggestDropMetrics, Metrics: g}
			for _, n := range g {
				m := r.find(n)
				s.SeriesSaved += m.Series
				s.SamplesRateSaved += m.SamplesRate
			}
			s.Rules = []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: alternation(g), Action: "drop"}}
			out = append(out, s)
		}
	}

	// Labels: per label, which metrics carry it and whether all leave it unused.
	type lab struct {
		unusedIn []MetricReport
		usedIn   int
	}
	labs := map[string]*lab{}
	for _, m := range r.Metrics {
		if m.State == StateUnused {
			continue // dropped wholesale by the rule above
		}
		unused := map[string]bool{}
		for _, l := range m.UnusedLabels {
			unused[l] = true
		}
		for _, lc := range m.labels {
			l := labs[lc.Name]
			if l == nil {
				l = &lab{}
				labs[lc.Name] = l
			}
			if unused[lc.Name] {
				l.unusedIn = append(l.unusedIn, m)
			} else {
				l.usedIn++
			}
		}
	}
	for name, l := range labs {
		if len(l.unusedIn) == 0 {
			continue
		}
		if l.usedIn == 0 {
			s := Suggestion{Kind: SuggestLabelDrop, Labels: []string{name}, Rules: []RelabelRule{{Regex: regexp.QuoteMeta(name), Action: "labeldrop"}}}
			for _, m := range l.unusedIn {
				s.Metrics = append(s.Metrics, m.Name)
				addLabelSaving(&s, m, name)
			}
			sort.Strings(s.Metrics)
			out = append(out, s)
			continue
		}
		for _, m := range l.unusedIn {
			empty := ""
			s := Suggestion{Kind: SuggestMetricLabelDrop, Metrics: []string{m.Name}, Labels: []string{name},
				Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: regexp.QuoteMeta(m.Name), TargetLabel: name, Replacement: &empty, Action: "replace"}}}
			addLabelSaving(&s, m, name)
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].SeriesSaved != out[j].SeriesSaved {
			return out[i].SeriesSaved > out[j].SeriesSaved
		}
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return strings.Join(out[i].Metrics, ",")+strings.Join(out[i].Labels, ",") < strings.Join(out[j].Metrics, ",")+strings.Join(out[j].Labels, ",")
	})
	return out
}

func addLabelSaving(s *Suggestion, m MetricReport, label string) {
	for _, lc := range m.labels {
		if lc.Name != label {
			continue
		}
		switch {
		case lc.Values == 1:
			// A constant label never distinguishes series.
		case lc.SeriesWithout == 0:
			s.MergeUnknown = true
			s.MergesSeries = true
		case lc.SeriesWithout < m.Series:
			s.MergesSeries = true
			s.SeriesSaved += m.Series - lc.SeriesWithout
			if m.Series > 0 {
				s.SamplesRateSaved += m.SamplesRate * float64(m.Series-lc.SeriesWithout) / float64(m.Series)
			}
		}
	}
}

func alternation(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	sort.Strings(q)
	return strings.Join(q, "|")
}

func (r *Report) find(name string) MetricReport {
	i := sort.Search(len(r.Metrics), func(i int) bool { return r.Metrics[i].Name >= name })
	if i < len(r.Metrics) && r.Metrics[i].Name == name {
		return r.Metrics[i]
	}
	return MetricReport{}
}
