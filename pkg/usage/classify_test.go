package usage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := Classify(scenarioConsumers(t), scenarioAccess(t, at).Snapshot(), scenarioCosts(), at)
	got := map[string]MetricReport{}
	for _, m := range rep.Metrics {
		got[m.Name] = m
	}
	require.Len(t, got, len(scenarioCosts()))

	tests := map[string]struct {
		state        State
		reason       string
		unusedLabels []string
		usedBy       []string
		queries      uint64
		users        int
	}{
		"up":             {state: StatePartiallyUsed, unusedLabels: []string{"instance"}, usedBy: []string{"dashboard/dash"}},
		"requests_total": {state: StatePartiallyUsed, unusedLabels: []string{"instance", "path"}, usedBy: []string{"recording_rule/g/job:requests:rate5m"}},
		"dead_input":     {state: StateUnused, reason: ReasonDeadRecordingRules, usedBy: []string{"recording_rule/g/dead:rule"}},
		"errors_total":   {state: StateUsed, usedBy: []string{"alert/g/Errors"}},
		"queried_metric": {state: StateUsed, usedBy: []string{"query/queries"}, queries: 3, users: 2},
		"pat_x":          {state: StatePartiallyUsed, unusedLabels: []string{"job"}, usedBy: []string{"query/queries"}, queries: 1}, // count() reads no label
		"lonely":         {state: StateUnused, reason: ReasonNoReaders, usedBy: []string{}},
		"lonely_bucket":  {state: StateUnused, reason: ReasonNoReaders, usedBy: []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := got[name]
			require.Equal(t, tc.state, m.State)
			require.Equal(t, tc.reason, m.Reason)
			require.Equal(t, tc.unusedLabels, m.UnusedLabels)
			by := []string{}
			for _, u := range m.UsedBy {
				by = append(by, u.Kind+"/"+u.ID)
			}
			require.Equal(t, tc.usedBy, by)
			require.Equal(t, tc.queries, m.QueryCount)
			require.Equal(t, tc.users, m.Users)
			if tc.queries > 0 {
				require.NotNil(t, m.LastQueried)
			}
		})
	}
	require.Equal(t, at.Add(time.Minute), *got["queried_metric"].LastQueried)
}

func TestClassifyRecordingChain(t *testing.T) {
	// a → r1 → r2 → alert: the whole chain is live. b → r3 → r4 (nobody): dead.
	cs := []Consumer{
		consumer(t, KindRecordingRule, "r1", "r1", `sum by (job) (a)`),
		consumer(t, KindRecordingRule, "r2", "r2", `r1 * 2`),
		consumer(t, KindAlert, "alert", "", `r2 > 1`),
		consumer(t, KindRecordingRule, "r3", "r3", `sum(b)`),
		consumer(t, KindRecordingRule, "r4", "r4", `r3 * 2`),
	}
	costs := StaticCosts{{Name: "a"}, {Name: "b"}, {Name: "r1"}, {Name: "r2"}, {Name: "r3"}, {Name: "r4"}}
	rep := Classify(cs, AccessSnapshot{}, costs, time.Time{})
	want := map[string]State{"a": StateUsed, "r1": StateUsed, "r2": StateUsed, "b": StateUnused, "r3": StateUnused, "r4": StateUnused}
	for _, m := range rep.Metrics {
		require.Equal(t, want[m.Name], m.State, m.Name)
	}

	// A query on r4 revives the dead chain.
	s := NewAccessStats(10, 10)
	query(t, s, `r4`, "", time.Time{})
	rep = Classify(cs, s.Snapshot(), costs, time.Time{})
	for _, m := range rep.Metrics {
		require.Equal(t, StateUsed, m.State, m.Name)
	}
}

func TestReportFilter(t *testing.T) {
	rep := Classify(scenarioConsumers(t), AccessSnapshot{}, scenarioCosts(), time.Time{})
	var names []string
	for _, m := range rep.Filter(StateUnused, "series") {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"lonely", "lonely_bucket", "dead_input", "queried_metric", "pat_x"}, names)
	require.Len(t, rep.Filter("", ""), len(scenarioCosts()))
}
