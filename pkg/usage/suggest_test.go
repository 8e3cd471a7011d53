package usage

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// suggestionKey names a suggestion in tests: kind:metrics:labels.
func suggestionKey(s Suggestion) string {
	return s.Kind + ":" + strings.Join(s.Metrics, ",") + ":" + strings.Join(s.Labels, ",")
}

// requireSafeSuggestions checks what every suggestion must be: saving at
// least one series, ranked by savings, and with rules that match exactly the
// metrics it names among every metric of the report (no rule applies to
// every series sent).
func requireSafeSuggestions(t *testing.T, rep *Report, ss []Suggestion) {
	t.Helper()
	for i, s := range ss {
		require.Positive(t, s.SeriesSaved, "%s saves nothing", suggestionKey(s))
		if i > 0 {
			prev := ss[i-1]
			require.True(t, prev.SeriesSaved > s.SeriesSaved ||
				prev.SeriesSaved == s.SeriesSaved && prev.SamplesRateSaved >= s.SamplesRateSaved,
				"%s ranked before %s", suggestionKey(prev), suggestionKey(s))
		}
		require.NotEmpty(t, s.Rules, suggestionKey(s))
		for _, r := range s.Rules {
			require.Equal(t, []string{"__name__"}, r.SourceLabels, "%s: a rule without a metric-name match applies to every series", suggestionKey(s))
			re := regexp.MustCompile("^(?:" + r.Regex + ")$")
			var matched []string
			for _, m := range rep.Metrics {
				if re.MatchString(m.Name) {
					matched = append(matched, m.Name)
				}
			}
			require.Equal(t, s.Metrics, matched, "%s: the rule's scope is not exactly its metrics", suggestionKey(s))
		}
	}
}

func TestSuggest(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := Classify(scenarioConsumers(t), scenarioAccess(t, at).Snapshot(), scenarioCosts(), at)
	ss := Suggest(rep)
	requireSafeSuggestions(t, rep, ss)
	empty := ""
	// lonely and lonely_bucket form one family, dropped together; dead_input
	// is read only by a dead recording rule; instance is used by
	// queried_metric, so it is removed from up and requests_total one by
	// one; path is unused wherever it appears. up's job label saves nothing
	// known (no series_without estimate) and is not suggested.
	want := []Suggestion{
		{Kind: SuggestDropMetrics, Metrics: []string{"lonely", "lonely_bucket"}, SeriesSaved: 1900, SamplesRateSaved: 190,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "lonely|lonely_bucket", Action: "drop"}}},
		{Kind: SuggestLabelDrop, Metrics: []string{"requests_total"}, Labels: []string{"path"}, SeriesSaved: 280, SamplesRateSaved: 28, MergesSeries: true,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "requests_total", TargetLabel: "path", Replacement: &empty, Action: "replace"}}},
		{Kind: SuggestMetricLabelDrop, Metrics: []string{"requests_total"}, Labels: []string{"instance"}, SeriesSaved: 270, SamplesRateSaved: 27, MergesSeries: true,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "requests_total", TargetLabel: "instance", Replacement: &empty, Action: "replace"}}},
		{Kind: SuggestDropMetrics, Metrics: []string{"dead_input"}, SeriesSaved: 50, SamplesRateSaved: 5,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "dead_input", Action: "drop"}}},
		{Kind: SuggestMetricLabelDrop, Metrics: []string{"up"}, Labels: []string{"instance"}, SeriesSaved: 8, SamplesRateSaved: 0.8, MergesSeries: true,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "up", TargetLabel: "instance", Replacement: &empty, Action: "replace"}}},
	}
	require.Equal(t, want, ss)
}

// TestSuggestScopedToItsMetrics is the dangerous case seen after 12 minutes
// of `make run`: cluster is unused by the readers of the nine metrics that
// carry it, and only two of them have more than one cluster. The
// suggestion must remove cluster from exactly those two, never from every
// series sent.
func TestSuggestScopedToItsMetrics(t *testing.T) {
	var (
		costs StaticCosts
		reads []string
	)
	for i := range 9 {
		name := fmt.Sprintf("m%d_total", i)
		cluster := LabelCost{Name: "cluster", Values: 1, SeriesWithout: 10}
		switch i {
		case 3:
			cluster = LabelCost{Name: "cluster", Values: 3, SeriesWithout: 4} // saves 6
		case 7:
			cluster = LabelCost{Name: "cluster", Values: 2, SeriesWithout: 5} // saves 5
		case 8:
			cluster = LabelCost{Name: "cluster", Values: 2, SeriesWithout: 10} // determined by job: saves 0
		}
		costs = append(costs, MetricCost{Name: name, Series: 10, SamplesRate: 1, Labels: []LabelCost{{Name: "job", Values: 10, SeriesWithout: 1}, cluster}})
		reads = append(reads, "sum by (job) (rate("+name+"[5m]))")
	}
	dash := consumer(t, KindDashboard, "d", "", strings.Join(reads, " + "))
	rep := Classify([]Consumer{dash}, AccessSnapshot{}, costs, time.Time{})
	ss := Suggest(rep)
	requireSafeSuggestions(t, rep, ss)
	empty := ""
	require.Equal(t, []Suggestion{{
		Kind: SuggestLabelDrop, Metrics: []string{"m3_total", "m7_total"}, Labels: []string{"cluster"},
		SeriesSaved: 11, SamplesRateSaved: 1.1, MergesSeries: true,
		Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "m3_total|m7_total", TargetLabel: "cluster", Replacement: &empty, Action: "replace"}},
	}}, ss)
}

func TestSuggestNothingSavesNothing(t *testing.T) {
	tests := map[string]struct {
		costs StaticCosts
		reads string
	}{
		"unused metric without series": {
			costs: StaticCosts{{Name: "gone_total", Series: 0}},
		},
		"unused family whose members have no series": {
			costs: StaticCosts{{Name: "gone_bucket"}, {Name: "gone_count"}, {Name: "gone_sum"}},
		},
		"constant label": {
			costs: StaticCosts{{Name: "a", Series: 10, Labels: []LabelCost{{Name: "job", Values: 10, SeriesWithout: 1}, {Name: "env", Values: 1, SeriesWithout: 10}}}},
			reads: "sum by (job) (a)",
		},
		"label determined by the others": {
			costs: StaticCosts{{Name: "a", Series: 10, Labels: []LabelCost{{Name: "job", Values: 10, SeriesWithout: 1}, {Name: "pod", Values: 10, SeriesWithout: 10}}}},
			reads: "sum by (job) (a)",
		},
		"label without an estimate": {
			costs: StaticCosts{{Name: "a", Series: 10, Labels: []LabelCost{{Name: "job", Values: 10, SeriesWithout: 1}, {Name: "pod", Values: 4}}}},
			reads: "sum by (job) (a)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var consumers []Consumer
			if tc.reads != "" {
				consumers = append(consumers, consumer(t, KindDashboard, "d", "", tc.reads))
			}
			rep := Classify(consumers, AccessSnapshot{}, tc.costs, time.Time{})
			require.Empty(t, Suggest(rep))
		})
	}
}

func TestSuggestRankedBySavings(t *testing.T) {
	// Unused metrics in distinct families: ranked by series saved, then by
	// samples/s saved, then by name.
	costs := StaticCosts{
		{Name: "small", Series: 1, SamplesRate: 5},
		{Name: "big", Series: 100, SamplesRate: 1},
		{Name: "mid_a", Series: 10, SamplesRate: 1},
		{Name: "mid_b", Series: 10, SamplesRate: 9},
		{Name: "mid_c", Series: 10, SamplesRate: 1},
	}
	rep := Classify(nil, AccessSnapshot{}, costs, time.Time{})
	ss := Suggest(rep)
	requireSafeSuggestions(t, rep, ss)
	var order []string
	for _, s := range ss {
		order = append(order, strings.Join(s.Metrics, ","))
	}
	require.Equal(t, []string{"big", "mid_b", "mid_a", "mid_c", "small"}, order)
}
