package retro

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aggCandidate normalises ids in path (so two req_total series merge) and
// aggregates req_total without instance, a counter, per minute.
const aggCandidate = `rules:
- name: ids
  action: rewrite
  labels:
    normalize:
    - labels: [path]
      builtin: [number]
aggregations:
- name: req
  match: req_total
  type: counter
  without: [instance]
  interval: 1m
`

// fillCounters stores, every 15s for 5 minutes from t0: two req_total
// series that the rules merge (the second resets at 2m30s), one more
// req_total the aggregation takes alone, and other_metric, rewritten.
func fillCounters(be *memBackend) {
	for i := 0; i < 20; i++ {
		ts := t0.Add(time.Duration(i) * 15 * time.Second).UnixMilli()
		be.add(labels.FromStrings("__name__", "req_total", "instance", "a", "path", "/users/1"), Sample{T: ts, V: float64(i)})
		be.add(labels.FromStrings("__name__", "req_total", "instance", "a", "path", "/users/2"), Sample{T: ts, V: float64(i % 10)})
		be.add(labels.FromStrings("__name__", "req_total", "instance", "c", "path", "/about"), Sample{T: ts, V: float64(100 + i)})
		be.add(labels.FromStrings("__name__", "other_metric", "path", "/users/3"), Sample{T: ts, V: float64(i)})
	}
}

// minuteTotals are samples at the end of each minute from t0 (minus 1ms).
func minuteTotals(vs ...float64) []Sample {
	out := make([]Sample, len(vs))
	for k, v := range vs {
		out[k] = Sample{T: t0.Add(time.Duration(k+1)*time.Minute).UnixMilli() - 1, V: v}
	}
	return out
}

func TestMergeThroughAggregation(t *testing.T) {
	be := newMem()
	fillCounters(be)
	m, _ := startManager(t, testConfig(t), be)
	s := Spec{Candidate: aggCandidate, Selector: `{__name__=~".+"}`, Start: rng[0], End: rng[1]}

	j := wait(t, m, submit(t, m, s).ID, StateSucceeded)
	dr := j.DryRun
	assert.EqualValues(t, 4, dr.SeriesAffected)
	assert.EqualValues(t, 2, dr.SeriesMerged)
	assert.Zero(t, dr.SeriesMergeRefused)
	assert.EqualValues(t, 3, dr.SeriesAggregated)
	assert.EqualValues(t, 60, dr.SamplesAggregated)
	assert.EqualValues(t, 20, dr.SamplesRewritten)
	assert.EqualValues(t, 2, dr.AggregationGroups)
	assert.EqualValues(t, 1, dr.TargetSeries)
	require.Len(t, dr.Merges, 1)
	assert.Equal(t, "req", dr.Merges[0].Aggregation)

	s.Mode, s.DeleteOriginals = ModeExecute, true
	j = wait(t, m, submit(t, m, s).ID, StateSucceeded, StatePaused, StateFailed)
	require.Equal(t, StateSucceeded, j.State, j.Error)
	var other []Sample
	for i := 0; i < 20; i++ {
		other = append(other, Sample{T: t0.Add(time.Duration(i) * 15 * time.Second).UnixMilli(), V: float64(i)})
	}
	// Per minute, the increases of the group's inputs, as running totals:
	// /users/:id is 3+3, then 4+4, then 4+3 (the reset at 2m30s counts
	// 0), 4+4, 4+4; /about 3, then 4 a minute.
	want := map[string][]Sample{
		labels.FromStrings("__name__", "other_metric", "path", "/users/:id").String():                   other,
		labels.FromStrings("__name__", "req_total:sum_without_instance", "path", "/users/:id").String(): minuteTotals(6, 14, 21, 29, 37),
		labels.FromStrings("__name__", "req_total:sum_without_instance", "path", "/about").String():     minuteTotals(3, 7, 11, 15, 19),
	}
	assert.Equal(t, want, be.dump())
	assert.EqualValues(t, 4, j.Progress.SeriesDeleted)
	assert.EqualValues(t, 80, j.Progress.SamplesRead)

	// Again: nothing left to do.
	j = wait(t, m, submit(t, m, s).ID, StateSucceeded)
	assert.Zero(t, j.DryRun.SeriesAffected)
	assert.Equal(t, want, be.dump())
}

// TestMergeWithoutTakingAggregationIsRefused: an aggregation rule that
// does not take the merged series (no type: stored series carry no
// metadata) leaves the merge refused, before anything is written.
func TestMergeWithoutTakingAggregationIsRefused(t *testing.T) {
	be := newMem()
	fillCounters(be)
	before := be.dump()
	m, _ := startManager(t, testConfig(t), be)
	s := Spec{Candidate: strings.Replace(aggCandidate, "  type: counter\n", "", 1),
		Selector: `{__name__=~".+"}`, Start: rng[0], End: rng[1], Mode: ModeExecute, DeleteOriginals: true}
	j := wait(t, m, submit(t, m, s).ID, StateFailed, StateSucceeded)
	require.Equal(t, StateFailed, j.State)
	assert.Contains(t, j.Error, "no aggregation rule takes them")
	assert.EqualValues(t, 2, j.DryRun.SeriesMergeRefused)
	assert.Zero(t, j.DryRun.SeriesAggregated)
	assert.Equal(t, before, be.dump())
}

// TestAggregationGroupsStayInOneBatch: the inputs of a group are never
// split, whatever the batch size.
func TestAggregationGroupsStayInOneBatch(t *testing.T) {
	it := func(action, group string) Item { return Item{Action: action, Group: group} }
	items := []Item{it(ActionRewrite, ""), it(ActionDrop, ""), it(ActionAggregate, "a"), it(ActionAggregate, "a"), it(ActionAggregate, "a"), it(ActionAggregate, "b")}
	for size, want := range map[int][][2]int{
		1:  {{0, 1}, {1, 2}, {2, 5}, {5, 6}},
		2:  {{0, 2}, {2, 5}, {5, 6}},
		3:  {{0, 5}, {5, 6}},
		10: {{0, 6}},
	} {
		assert.Equal(t, want, batchRanges(items, size), fmt.Sprint("size ", size))
	}
}

// TestRewriteOntoStoredSeriesIsAMerge: a series rewritten into the labels
// of a stored series no rule changes would mix two series' samples: it is
// a merge, refused without an aggregation rule.
func TestRewriteOntoStoredSeriesIsAMerge(t *testing.T) {
	be := newMem()
	be.add(labels.FromStrings("__name__", "m", "path", "/a/1"), Sample{T: t0.UnixMilli(), V: 1})
	be.add(labels.FromStrings("__name__", "m", "path", "/a/:id"), Sample{T: t0.UnixMilli(), V: 2})
	before := be.dump()
	m, _ := startManager(t, testConfig(t), be)
	j := wait(t, m, submit(t, m, spec(ModeExecute, true)).ID, StateFailed, StateSucceeded)
	require.Equal(t, StateFailed, j.State)
	assert.EqualValues(t, 1, j.DryRun.SeriesMergeRefused)
	require.Len(t, j.DryRun.Merges, 1)
	assert.Len(t, j.DryRun.Merges[0].Sources, 2)
	assert.Equal(t, before, be.dump())
}

// FuzzAggregationConfig: the aggregation rules a job keeps load or fail
// with an error, never a panic, and what loads compiles or fails cleanly.
func FuzzAggregationConfig(f *testing.F) {
	f.Add("- name: req\n  match: req_total\n  type: counter\n  without: [instance]\n  interval: 1m\n")
	f.Add("")
	f.Add("- {name: g, match: 'up{job=\"a\"}', type: gauge, by: [job], interval: 30s, outputs: [sum, max]}\n")
	f.Add("- name: [\n")
	f.Fuzz(func(t *testing.T, y string) {
		_, eng, err := compileAggregations(y)
		if err == nil && eng != nil {
			_ = eng.Window()
			_ = eng.Horizon()
			eng.Takes("t", labels.FromStrings("__name__", "req_total", "instance", "a"))
		}
	})
}

// TestRoutesWithoutHistogramsRefuseThem: the TSDB-block route and
// VictoriaMetrics' import cannot carry native histograms; they say so
// instead of copying floats only.
func TestRoutesWithoutHistogramsRefuseThem(t *testing.T) {
	s := Series{Labels: labels.FromStrings("__name__", "h"), Histograms: []Histogram{{T: 1, H: testHistogram(0)}}}
	cfg := testConfig(t)
	m, err := NewManager(ManagerDeps{Config: cfg, Backend: &HTTPBackendConfig{Kind: KindPrometheus, URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	om, err := m.openMetricsBatch("20261205T100000-00000000", 0)
	require.NoError(t, err)
	defer om.abort()
	err = om.write([]Series{s})
	require.ErrorIs(t, err, ErrUnsupported)
	assert.ErrorContains(t, err, "native histogram")

	be := &HTTPBackend{cfg: HTTPBackendConfig{Kind: KindVictoriaMetrics}}
	err = be.vmImport(context.Background(), []Series{s})
	require.ErrorIs(t, err, ErrUnsupported)
}
