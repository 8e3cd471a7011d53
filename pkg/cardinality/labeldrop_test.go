package cardinality

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// ser is a series of metric in tenant "t" with the label pairs kv.
func ser(metric string, kv ...string) *Series {
	ls := labels.FromStrings(append([]string{model.MetricNameLabel, metric}, kv...)...)
	return &Series{Tenant: "t", Metric: metric, Hash: ls.Hash(), Labels: ls, Samples: 1, Bytes: 10}
}

// byName indexes a row's labels.
func byName(row MetricCardinality) map[string]LabelCardinality {
	out := map[string]LabelCardinality{}
	for _, l := range row.Labels {
		out[l.Name] = l
	}
	return out
}

// without returns SeriesWithout per label name of tenant "t"'s metric.
func without(t *testing.T, tr *Tracker, metric string) map[string]uint64 {
	t.Helper()
	return withoutOf(t, tr, "t", metric)
}

func withoutOf(t *testing.T, tr *Tracker, tenant, metric string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for name, l := range byName(metricRow(t, tr, tenant, metric)) {
		out[name] = l.SeriesWithout
	}
	return out
}

func TestLabelDropHashes(t *testing.T) {
	// Order-independent: the sum does not depend on the order of the pairs.
	a, b, c := pairHash(1, 2), pairHash(3, 4), pairHash(5, 6)
	require.Equal(t, withoutHash(a+b+c, b), withoutHash(c+a+b, b))
	// The set without b is the set {a, c}.
	require.Equal(t, withoutHash(a+c, 0), withoutHash(a+b+c, b))
	require.NotEqual(t, withoutHash(a+c, 0), withoutHash(a+b, 0))
	// A pair is its name and value together: a="b" is not b="a".
	require.NotEqual(t, pairHash(nameHash("a"), xxhash.Sum64String("b")), pairHash(nameHash("b"), xxhash.Sum64String("a")))
}

// TestLabelDropHeterogeneousLabels: series that lack a label count as they
// are when it is dropped, and a label that appears after the metric's
// first series has no estimate until the series seen before it left the
// window.
func TestLabelDropHeterogeneousLabels(t *testing.T) {
	observeAll := func(tr *Tracker, now time.Time, debugFirst bool) {
		debug := func() {
			for i := range 10 {
				tr.Observe(ser("m", "job", "x", "instance", fmt.Sprint(i), "debug", fmt.Sprint("d", i)), now)
			}
		}
		if debugFirst {
			debug()
		}
		for i := range 100 {
			tr.Observe(ser("m", "job", "x", "instance", fmt.Sprint(i)), now)
		}
		if !debugFirst {
			debug()
		}
	}
	// 110 series: 100 {job, instance} and 10 that also carry debug. Dropping
	// debug merges those 10 into their twins; dropping instance leaves
	// {job=x} and the 10 {job=x, debug=...}.
	want := map[string]uint64{"job": 110, "instance": 11, "debug": 100}
	for name, limited := range map[string]bool{"unlimited": false, "limited": true} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			if limited {
				cfg.Limits.Defaults.MaxSeriesPerMetric = 1000 // skips series already seen in a sub-window
			}
			t.Run("label on the first series", func(t *testing.T) {
				c := newClock()
				tr := newTracker(t, cfg, c)
				observeAll(tr, c.now(), true)
				require.Equal(t, want, without(t, tr, "m"))
			})
			t.Run("label appears later", func(t *testing.T) {
				c := newClock()
				tr := newTracker(t, cfg, c)
				observeAll(tr, c.now(), false)
				got := without(t, tr, "m")
				require.Equal(t, map[string]uint64{"job": 110, "instance": 11, "debug": 0}, got,
					"debug's sketch misses the 100 series seen before it: unknown")
				for step := range cfg.SubWindows {
					now := c.advance(cfg.subWindow())
					tr.Rotate(now)
					observeAll(tr, now, false)
					if step < cfg.SubWindows-1 {
						require.Zero(t, without(t, tr, "m")["debug"], "step %d: the first sub-window is still live", step)
					}
				}
				require.Equal(t, want, without(t, tr, "m"), "known once the first sub-window left the window")
			})
		})
	}
}

// TestLabelDropUntrackedLabels: beyond max_label_pairs a label has no
// estimate but still tells series apart in the others'.
func TestLabelDropUntrackedLabels(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.MaxLabelPairs = 2
	tr := newTracker(t, cfg, c)
	for i := range 100 {
		tr.Observe(ser("m", "a", fmt.Sprint(i%10), "b", fmt.Sprint(i/10), "c", fmt.Sprint(i)), c.now())
	}
	require.Equal(t, map[string]uint64{"a": 100, "b": 100}, without(t, tr, "m"), "c, untracked, still distinguishes")
}

func TestLabelDropOff(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.LabelDropEstimates = false
	off := newTracker(t, cfg, c)
	for i := range 30 {
		off.Observe(ser("m", "a", fmt.Sprint(i%3), "b", fmt.Sprint(i)), c.now())
	}
	rows, err := off.Metric(context.Background(), "m", Query{Sketches: true})
	require.NoError(t, err)
	for _, l := range rows[0].Labels {
		require.Zero(t, l.SeriesWithout, l.Name)
		require.Nil(t, l.WithoutSketch, l.Name)
		require.NotNil(t, l.Sketch, l.Name)
	}
	require.Equal(t, map[string]uint64{"a": 0, "b": 0}, without(t, off, "m"))

	// Its snapshot restores where estimates are on: unknown until the
	// restored sub-windows leave the window.
	var buf bytes.Buffer
	require.NoError(t, off.Snapshot(&buf))
	on := newTracker(t, testConfig(), c)
	require.NoError(t, on.Restore(buf.Bytes()))
	require.Equal(t, map[string]uint64{"a": 0, "b": 0}, without(t, on, "m"))
	for range cfg.SubWindows {
		now := c.advance(cfg.subWindow())
		on.Rotate(now)
		for i := range 30 {
			on.Observe(ser("m", "a", fmt.Sprint(i%3), "b", fmt.Sprint(i)), now)
		}
	}
	require.Equal(t, map[string]uint64{"a": 30, "b": 3}, without(t, on, "m"))
}

// TestLabelDropListing: Query.Labels adds labels to the listing, without
// label sketches even when sketches are asked for.
func TestLabelDropListing(t *testing.T) {
	tr, _ := limitedTracker(t)
	ctx := context.Background()
	rows, err := tr.Metrics(ctx, Query{Tenant: "team-a"})
	require.NoError(t, err)
	for _, r := range rows {
		require.Nil(t, r.Labels, "no labels unless asked for")
	}
	rows, err = tr.Metrics(ctx, Query{Tenant: "team-a", Labels: true, Sketches: true})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, "http_requests_total", rows[0].Name)
	require.NotNil(t, rows[0].SeriesSketch)
	require.Equal(t, []LabelCardinality{
		{Name: "id", Values: 150, SeriesWithout: 150},
		{Name: "path", Values: 150, SeriesWithout: 150},
		{Name: "code", Values: 3, SeriesWithout: 150},
	}, rows[0].Labels)
	require.Equal(t, []LabelCardinality{{Name: "id", Values: 40, SeriesWithout: 1}}, rows[1].Labels,
		"up has one label: dropping it leaves one series")

	h := NewHandler(tr, "", nil)
	code, body := get(t, h, PathMetrics+"?tenant=team-a&labels=true&sketches=true&limit=1")
	require.Equal(t, http.StatusOK, code, string(body))
	t.Logf("GET %s?tenant=team-a&labels=true&limit=1 →\n%s", PathMetrics, body)
	var raw struct {
		Data []struct {
			Labels []map[string]any `json:"labels"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &raw))
	require.Len(t, raw.Data[0].Labels, 3)
	for _, l := range raw.Data[0].Labels {
		require.Contains(t, l, "series_without")
		require.NotContains(t, l, "sketch")
		require.NotContains(t, l, "without_sketch")
	}
	code, body = get(t, h, PathMetrics+"/http_requests_total?tenant=team-a&sketches=true")
	require.Equal(t, http.StatusOK, code)
	one, err := DecodeMetrics(body)
	require.NoError(t, err)
	for _, l := range one[0].Labels {
		require.NotEmpty(t, l.Sketch, l.Name)
		require.NotEmpty(t, l.WithoutSketch, l.Name)
	}
	code, _ = get(t, h, PathMetrics+"?labels=maybe")
	require.Equal(t, http.StatusBadRequest, code)
}

// TestLabelDropMergeMetrics: two owners of a metric (a ring change) merge
// into what one tracker that saw everything answers when the parts carry
// sketches, and into the largest estimate when they do not.
func TestLabelDropMergeMetrics(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	single, a, b := newTracker(t, cfg, c), newTracker(t, cfg, c), newTracker(t, cfg, c)
	now := c.now()
	for i := range 3000 {
		s := ser("m", "instance", fmt.Sprint(i%300), "path", fmt.Sprint(i/300), "job", "x")
		single.Observe(s, now)
		switch {
		case i < 1000:
			a.Observe(s, now)
		case i < 2000:
			a.Observe(s, now)
			b.Observe(s, now) // both owners saw these
		default:
			b.Observe(s, now)
		}
	}
	ctx := context.Background()
	one := func(tr *Tracker) []MetricCardinality {
		rows, err := tr.Metric(ctx, "m", Query{Sketches: true})
		require.NoError(t, err)
		return rows
	}
	want := metricRow(t, single, "t", "m")
	got, err := MergeMetrics([][]MetricCardinality{one(a), one(b)}, Query{})
	require.NoError(t, err)
	require.Equal(t, want.Series, got[0].Series)
	require.Equal(t, want.Labels, got[0].Labels, "sketch unions: values and series without")
	require.Equal(t, map[string]uint64{"instance": 10, "path": 300, "job": 3000}, without(t, single, "m"))
	kept, err := MergeMetrics([][]MetricCardinality{one(a), one(b)}, Query{Sketches: true})
	require.NoError(t, err)
	for _, l := range kept[0].Labels {
		require.NotEmpty(t, l.WithoutSketch, "kept for a further level of merging")
	}

	// The listing carries no label sketches: the largest estimate.
	list := func(tr *Tracker) []MetricCardinality {
		rows, err := tr.Metrics(ctx, Query{Labels: true, Sketches: true})
		require.NoError(t, err)
		return rows
	}
	got, err = MergeMetrics([][]MetricCardinality{list(a), list(b)}, Query{Labels: true})
	require.NoError(t, err)
	la, lb := byName(list(a)[0]), byName(list(b)[0])
	for name, l := range byName(got[0]) {
		require.Equal(t, max(la[name].SeriesWithout, lb[name].SeriesWithout), l.SeriesWithout, name)
		require.Equal(t, max(la[name].Values, lb[name].Values), l.Values, name)
		require.Nil(t, l.WithoutSketch)
	}

	// A part that does not know the estimate makes it unknown; a label only
	// one part has is taken as it is; SeriesWithout never exceeds Series.
	parts := [][]MetricCardinality{
		{{Name: "m", Tenant: "t", Series: 100, Labels: []LabelCardinality{{Name: "x", Values: 5, SeriesWithout: 20}, {Name: "y", Values: 3, SeriesWithout: 90}}}},
		{{Name: "m", Tenant: "t", Series: 80, Labels: []LabelCardinality{{Name: "x", Values: 4}, {Name: "z", Values: 2, SeriesWithout: 500}}}},
	}
	got, err = MergeMetrics(parts, Query{})
	require.NoError(t, err)
	require.Equal(t, uint64(100), got[0].Series)
	require.Equal(t, []LabelCardinality{
		{Name: "x", Values: 5},
		{Name: "y", Values: 3, SeriesWithout: 90},
		{Name: "z", Values: 2, SeriesWithout: 100},
	}, got[0].Labels)

	bad := [][]MetricCardinality{{{Name: "m", Tenant: "t", Labels: []LabelCardinality{{Name: "x", Values: 1, WithoutSketch: []byte("junk")}}}}}
	_, err = MergeMetrics(bad, Query{})
	require.ErrorIs(t, err, ErrCorrupt)
}

// TestLabelDropSnapshotAndHandoff: the without rings survive a restart and
// move with a metric, and an owner whose series never carried a label
// makes the merged estimate unknown.
func TestLabelDropSnapshotAndHandoff(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 1000
	a := newTracker(t, cfg, c)
	for step := range 3 {
		now := c.advance(cfg.subWindow())
		a.Rotate(now)
		for i := range 200 {
			a.Observe(ser("m", "instance", fmt.Sprint(i%20+step), "path", fmt.Sprint(i/20)), now)
		}
	}
	want := without(t, a, "m")
	require.Equal(t, map[string]uint64{"instance": 10, "path": 22}, want)

	var buf bytes.Buffer
	require.NoError(t, a.Snapshot(&buf))
	restored := newTracker(t, cfg, c)
	require.NoError(t, restored.Restore(buf.Bytes()))
	require.Equal(t, want, without(t, restored, "m"))
	require.NoError(t, restored.Restore(buf.Bytes()))
	require.Equal(t, want, without(t, restored, "m"), "restoring twice is idempotent")

	now := c.now()
	data, err := a.ExportMetric("t", "m", now)
	require.NoError(t, err)
	next := newTracker(t, cfg, c)
	next.Observe(ser("m", "instance", "0", "path", "0"), now) // already seen by a
	_, _, err = next.ImportMetric(data, now)
	require.NoError(t, err)
	require.Equal(t, want, without(t, next, "m"))

	// The new owner saw series without path: a's sketch of path misses
	// them, and its own never had path.
	other := newTracker(t, cfg, c)
	other.Observe(ser("m", "instance", "x"), now)
	_, _, err = other.ImportMetric(data, now)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"instance": 11, "path": 0}, without(t, other, "m"),
		"dropping instance: a's 10 paths and the new owner's empty label set")
	// The other way round: a label only the new owner had is missing a's
	// series.
	third := newTracker(t, cfg, c)
	third.Observe(ser("m", "instance", "0", "path", "0", "zone", "z"), now)
	_, _, err = third.ImportMetric(data, now)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"instance": 11, "path": 23, "zone": 0}, without(t, third, "m"))
	require.Equal(t, uint64(221), metricRow(t, third, "t", "m").Series)
}

// The v1 testdata files were written by the code before label-drop
// estimates (Snapshot and ExportMetric of populate's state, with limits of
// 20 series per metric and 100 values per label), at v1Time;
// snapshot-v1.json holds what that tracker answered.
var v1Time = time.Unix(0, 1800001800000000000).UTC()

func TestRestoreV1Snapshot(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Defaults.MaxSeriesPerMetric = 20
	cfg.Limits.Defaults.MaxValuesPerLabel = 100
	c := newClock()
	c.t = v1Time
	snap, err := os.ReadFile("testdata/snapshot-v1.bin")
	require.NoError(t, err)
	golden, err := os.ReadFile("testdata/snapshot-v1.json")
	require.NoError(t, err)
	var want struct {
		Metrics []MetricCardinality `json:"metrics"`
		M       []MetricCardinality `json:"m"`
		N       []MetricCardinality `json:"n"`
		Tenants []TenantCardinality `json:"tenants"`
	}
	require.NoError(t, json.Unmarshal(golden, &want))

	tr := newTracker(t, cfg, c)
	require.NoError(t, tr.Restore(snap))
	gotM, gotOne, gotT := allRows(t, tr)
	require.Equal(t, want.Metrics, gotM)
	require.Equal(t, want.M, gotOne, "the same answers; label-drop estimates unknown")
	require.Equal(t, want.Tenants, gotT)
	n, err := tr.Metric(context.Background(), "n", Query{})
	require.NoError(t, err)
	require.Equal(t, want.N, n)
	now := c.now()
	require.True(t, tr.Observe(mkSeries("t1", "m", 5, "pod", "a"), now).Admit, "admitted series keep flowing")
	require.False(t, tr.Observe(mkSeries("t1", "m", 999, "pod", "a"), now).Admit, "the limit holds")

	// Written again, it is a current snapshot that restores the same.
	var buf bytes.Buffer
	require.NoError(t, tr.Snapshot(&buf))
	again := newTracker(t, cfg, c)
	require.NoError(t, again.Restore(buf.Bytes()))
	require.Equal(t, withoutOf(t, tr, "t1", "m"), withoutOf(t, again, "t1", "m"))

	// Once the restored sub-windows have left the window, the estimates
	// are known.
	for range cfg.SubWindows {
		now := c.advance(cfg.subWindow())
		tr.Rotate(now)
		for i := range 30 {
			tr.Observe(mkSeries("t1", "m", i, "pod", string(rune('a'+i%5))), now)
		}
	}
	require.Equal(t, map[string]uint64{"id": 5, "pod": 30}, withoutOf(t, tr, "t1", "m"))

	// A v1 export imports too.
	exp, err := os.ReadFile("testdata/export-v1.bin")
	require.NoError(t, err)
	fresh := newTracker(t, cfg, newClock())
	tenant, metric, err := fresh.ImportMetric(exp, v1Time)
	require.NoError(t, err)
	require.Equal(t, [2]string{"t1", "m"}, [2]string{tenant, metric})

	// A version this build does not know is refused.
	future := bytes.Clone(snap[:len(snap)-4])
	future[len(snapshotMagic)] = 9
	require.ErrorIs(t, newTracker(t, cfg, c).Restore(withCRC(future)), ErrIncompatible)
}
