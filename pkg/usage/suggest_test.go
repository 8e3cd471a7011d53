package usage

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/aggregate"
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
		if s.Kind == SuggestAggregation {
			// One valid aggregation rule per metric, naming it (or its
			// family).
			require.Empty(t, s.Rules, suggestionKey(s))
			require.Len(t, s.Aggregations, len(s.Metrics), suggestionKey(s))
			for i, a := range s.Aggregations {
				require.NoError(t, a.Validate(), suggestionKey(s))
				require.True(t, strings.HasPrefix(s.Metrics[i], a.Match), "%s: rule %s does not name %s", suggestionKey(s), a.Match, s.Metrics[i])
				require.Equal(t, s.Labels, a.Without, suggestionKey(s))
			}
			continue
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

func aggRule(metric, label string) aggregate.RuleConfig {
	return aggregate.RuleConfig{Name: metric + "_without_" + label, Match: metric, Without: []string{label}, Interval: model.Duration(time.Minute)}
}

func TestSuggest(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := Classify(scenarioConsumers(t), scenarioAccess(t, at).Snapshot(), scenarioCosts(), at)
	ss := Suggest(rep)
	requireSafeSuggestions(t, rep, ss)
	// lonely and lonely_bucket form one family, dropped together; dead_input
	// is read only by a dead recording rule; instance is used by
	// queried_metric, so it is removed from up and requests_total one by
	// one; path is unused wherever it appears. up's job label saves nothing
	// known (no series_without estimate) and is not suggested.
	want := []Suggestion{
		{Kind: SuggestDropMetrics, Metrics: []string{"lonely", "lonely_bucket"}, SeriesSaved: 1900, SamplesRateSaved: 190,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "lonely|lonely_bucket", Action: "drop"}}},
		// Samples saved: the inputs' rate minus one output sample per
		// remaining series and minute.
		{Kind: SuggestAggregation, Metrics: []string{"requests_total"}, Labels: []string{"path"}, SeriesSaved: 280, SamplesRateSaved: 30 - 20.0/60, MergesSeries: true,
			Aggregations: []aggregate.RuleConfig{aggRule("requests_total", "path")}},
		{Kind: SuggestAggregation, Metrics: []string{"requests_total"}, Labels: []string{"instance"}, SeriesSaved: 270, SamplesRateSaved: 30 - 30.0/60, MergesSeries: true,
			Aggregations: []aggregate.RuleConfig{aggRule("requests_total", "instance")}},
		{Kind: SuggestDropMetrics, Metrics: []string{"dead_input"}, SeriesSaved: 50, SamplesRateSaved: 5,
			Rules: []RelabelRule{{SourceLabels: []string{"__name__"}, Regex: "dead_input", Action: "drop"}}},
		{Kind: SuggestAggregation, Metrics: []string{"up"}, Labels: []string{"instance"}, SeriesSaved: 8, SamplesRateSaved: 1 - 2.0/60, MergesSeries: true,
			Aggregations: []aggregate.RuleConfig{aggRule("up", "instance")}},
	}
	require.Equal(t, withIDs(want), ss)
	ids := map[string]bool{}
	for _, s := range ss {
		require.Len(t, s.ID, 12)
		require.False(t, ids[s.ID], "IDs are unique")
		ids[s.ID] = true
	}
	require.Equal(t, ss, Suggest(rep), "IDs are stable")
}

// withIDs sets the ID of every suggestion.
func withIDs(ss []Suggestion) []Suggestion {
	for i := range ss {
		ss[i].ID = SuggestionID(ss[i])
	}
	return ss
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
	require.Equal(t, withIDs([]Suggestion{{
		Kind: SuggestAggregation, Metrics: []string{"m3_total", "m7_total"}, Labels: []string{"cluster"},
		SeriesSaved: 11, SamplesRateSaved: (1 - 4.0/60) + (1 - 5.0/60), MergesSeries: true,
		Aggregations: []aggregate.RuleConfig{aggRule("m3_total", "cluster"), aggRule("m7_total", "cluster")},
	}}), ss)
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

// TestSuggestLimitRelief: a metric over or near its max_series_per_metric
// gets a limit_aggregation suggestion of its label whose aggregation saves
// the most series, even when readers use it (then ReadersAffected); a
// metric well under its limit gets none, and a metric and label an
// aggregation suggestion already covers are not suggested twice.
func TestSuggestLimitRelief(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	consumers := []Consumer{
		consumer(t, KindDashboard, "d", "", `sum by (pod) (rate(hot_total[5m])) + sum by (job) (rate(over_total[5m])) + sum by (job) (rate(calm_total[5m]))`),
	}
	costs := StaticCosts{
		{Name: "hot_total", Series: 900, SamplesRate: 90, LimitUse: 0.9, Labels: []LabelCost{{Name: "pod", Values: 300, SeriesWithout: 3}, {Name: "job", Values: 3, SeriesWithout: 300}}},
		{Name: "over_total", Series: 1000, SamplesRate: 100, LimitUse: 1.2, RefusedSeries: 200, Labels: []LabelCost{{Name: "job", Values: 2, SeriesWithout: 500}, {Name: "user", Values: 500, SeriesWithout: 2}}},
		{Name: "calm_total", Series: 100, SamplesRate: 10, LimitUse: 0.5, Labels: []LabelCost{{Name: "pod", Values: 100, SeriesWithout: 1}}},
	}
	rep := Classify(consumers, NewAccessStats(10, 10).Snapshot(), costs, at)
	var got []Suggestion
	for _, s := range Suggest(rep) {
		if s.Kind == SuggestLimitAggregation {
			got = append(got, s)
		}
	}
	require.Len(t, got, 1, "%+v", got)
	hot := got[0]
	require.Equal(t, []string{"hot_total"}, hot.Metrics)
	require.Equal(t, []string{"pod"}, hot.Labels)
	require.EqualValues(t, 897, hot.SeriesSaved)
	require.True(t, hot.ReadersAffected, "the dashboard groups by pod")
	require.Equal(t, 0.9, hot.LimitUse)
	require.Equal(t, []aggregate.RuleConfig{aggRule("hot_total", "pod")}, hot.Aggregations)
	require.NoError(t, hot.Aggregations[0].Validate())
	// over_total's best label, user, is unused: the aggregation suggestion
	// of unused labels has it already.
	var unused bool
	for _, s := range Suggest(rep) {
		if s.Kind == SuggestAggregation && slices.Equal(s.Metrics, []string{"over_total"}) && slices.Equal(s.Labels, []string{"user"}) {
			unused = true
		}
	}
	require.True(t, unused)
}
