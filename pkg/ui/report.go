package ui

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/usage"
)

// reportView is what the Usage and Rules pages derive from one usage
// classification, computed once per classification (usage.Reader hands out
// a new *usage.Report at each one and never changes it): the metrics in
// order of series and, when first asked for, the suggestions with their
// rules as YAML. Memory: 4 bytes per metric plus the suggestions.
type reportView struct {
	rep *usage.Report
	// bySeries indexes rep.Metrics by series, highest first, then by name.
	bySeries []int32
	// totalSeries is the series of every classified metric.
	totalSeries float64

	sugOnce sync.Once
	sug     []usage.Suggestion
}

// suggestionRow is a suggestion with what it would save as a share of
// every classified metric's series and its rules as YAML (the preview,
// cut at previewChars).
type suggestionRow struct {
	usage.Suggestion
	Share float64
	YAML  string
}

// previewChars bounds a suggestion's rule preview: a rule dropping
// thousands of metrics names them all in its regex.
const previewChars = 2000

func newReportView(rep *usage.Report) *reportView {
	v := &reportView{rep: rep, bySeries: make([]int32, len(rep.Metrics))}
	for i := range rep.Metrics {
		v.bySeries[i] = int32(i)
		v.totalSeries += float64(rep.Metrics[i].Series)
	}
	slices.SortFunc(v.bySeries, func(a, b int32) int {
		ma, mb := &rep.Metrics[a], &rep.Metrics[b]
		return cmp.Or(cmp.Compare(mb.Series, ma.Series), strings.Compare(ma.Name, mb.Name))
	})
	return v
}

// suggestions returns the first n suggestions (those saving the most
// series) as rows, and how many there are. usage.Suggest, which reads
// every metric as GET /promgov/api/v1/usage/suggestions does, runs once
// per classification; only the rows shown are previewed.
func (v *reportView) suggestions(n int) ([]suggestionRow, int) {
	v.sugOnce.Do(func() { v.sug = usage.Suggest(v.rep) })
	out := make([]suggestionRow, 0, min(n, len(v.sug)))
	for _, s := range v.sug[:min(n, len(v.sug))] {
		row := suggestionRow{Suggestion: s}
		if v.totalSeries > 0 {
			row.Share = float64(s.SeriesSaved) / v.totalSeries
		}
		var rules any = s.Rules
		if len(s.Aggregations) > 0 {
			rules = map[string]any{"aggregations": s.Aggregations}
		}
		if b, err := yaml.Marshal(rules); err == nil {
			row.YAML = truncate(string(b), previewChars)
		}
		out = append(out, row)
	}
	return out, len(v.sug)
}

// reportViews keeps the view of the current classification. Safe for
// concurrent use.
type reportViews struct {
	mu sync.Mutex
	v  *reportView
}

// get returns the view of rep (nil for nil), building it on first use.
func (r *reportViews) get(rep *usage.Report) *reportView {
	if rep == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.v == nil || r.v.rep != rep {
		r.v = newReportView(rep)
	}
	return r.v
}
