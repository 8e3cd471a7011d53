package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

var accessT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// accessQuery is one query recorded into AccessStats.
type accessQuery struct {
	tenant, expr, user string
	at                 time.Time
}

func recordAll(t testing.TB, s *AccessStats, qs ...accessQuery) {
	t.Helper()
	for _, q := range qs {
		r, err := promqlx.Extract(q.expr)
		require.NoError(t, err, q.expr)
		s.RecordQuery(q.tenant, r, q.user, q.at)
	}
}

// tenantData is every tenant's statistics in (sorted) wire form.
func tenantData(s *AccessStats) map[string]AccessData {
	out := map[string]AccessData{}
	for t, snap := range s.TenantSnapshots() {
		out[t] = snap.Data()
	}
	return out
}

func set(vs ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		m[v] = struct{}{}
	}
	return m
}

func pattern(regex string, negative bool, a *Access) PatternAccess {
	return PatternAccess{Pattern: promqlx.NewPattern(regex, negative, promqlx.MetricUse{}), Access: a}
}

// data builds an AccessData, nil slices made empty like Data() does.
func data(metrics []AccessRecord, patterns []AccessRecord) AccessData {
	if metrics == nil {
		metrics = []AccessRecord{}
	}
	if patterns == nil {
		patterns = []AccessRecord{}
	}
	return AccessData{Metrics: metrics, Patterns: patterns}
}

func TestAccessStatsRecordQuery(t *testing.T) {
	tests := map[string]struct {
		maxMetrics, maxUsers int
		queries              []accessQuery
		want                 map[string]AccessData
		wantLen              int
		wantDropped          uint64
	}{
		"counts, last, users and labels": {
			maxMetrics: 10, maxUsers: 10,
			queries: []accessQuery{
				{"a", `sum by (instance) (up)`, "bob", accessT0.Add(time.Minute)},
				{"a", `up{job="x"}`, "alice", accessT0},
				{"a", `sum by (job) (up)`, "alice", accessT0.Add(-time.Hour)},
			},
			want: map[string]AccessData{"a": data([]AccessRecord{
				{Name: "up", Count: 3, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}, Labels: []string{"instance", "job"}, AllLabels: true},
			}, nil)},
			wantLen: 1,
		},
		"aggregated only is not all labels": {
			maxMetrics: 10, maxUsers: 10,
			queries: []accessQuery{{"a", `sum by (job) (up)`, "", accessT0}},
			want: map[string]AccessData{"a": data([]AccessRecord{
				{Name: "up", Count: 1, Last: accessT0, Labels: []string{"job"}},
			}, nil)},
			wantLen: 1,
		},
		"empty user is not recorded": {
			maxMetrics: 10, maxUsers: 10,
			queries: []accessQuery{{"a", `up`, "", accessT0}, {"a", `up`, "", accessT0}},
			want:    map[string]AccessData{"a": data([]AccessRecord{{Name: "up", Count: 2, Last: accessT0, AllLabels: true}}, nil)},
			wantLen: 1,
		},
		"users bounded per metric": {
			maxMetrics: 10, maxUsers: 2,
			queries: []accessQuery{
				{"a", `up`, "u1", accessT0}, {"a", `up`, "u2", accessT0}, {"a", `up`, "u3", accessT0}, {"a", `up`, "u1", accessT0},
			},
			want:    map[string]AccessData{"a": data([]AccessRecord{{Name: "up", Count: 4, Last: accessT0, Users: []string{"u1", "u2"}, AllLabels: true}}, nil)},
			wantLen: 1,
		},
		"tenants kept apart": {
			maxMetrics: 10, maxUsers: 10,
			queries: []accessQuery{{"a", `up`, "alice", accessT0}, {"b", `up`, "bob", accessT0.Add(time.Second)}, {"b", `up`, "", accessT0}},
			want: map[string]AccessData{
				"a": data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, Users: []string{"alice"}, AllLabels: true}}, nil),
				"b": data([]AccessRecord{{Name: "up", Count: 2, Last: accessT0.Add(time.Second), Users: []string{"bob"}, AllLabels: true}}, nil),
			},
			wantLen: 2,
		},
		"metric bound spans all tenants": {
			maxMetrics: 2, maxUsers: 10,
			queries: []accessQuery{
				{"a", `m1`, "", accessT0},
				{"b", `m2`, "", accessT0},
				{"b", `m3`, "", accessT0}, // dropped: the bound is shared
				{"c", `m1`, "", accessT0}, // dropped: a new entry in another tenant
				{"a", `m1`, "", accessT0}, // kept: already tracked
			},
			want: map[string]AccessData{
				"a": data([]AccessRecord{{Name: "m1", Count: 2, Last: accessT0, AllLabels: true}}, nil),
				"b": data([]AccessRecord{{Name: "m2", Count: 1, Last: accessT0, AllLabels: true}}, nil),
				"c": data(nil, nil),
			},
			wantLen: 2, wantDropped: 2,
		},
		"patterns per tenant, outside the metric bound": {
			maxMetrics: 0, maxUsers: 10,
			queries: []accessQuery{
				{"a", `count({__name__=~"pat_.*"})`, "alice", accessT0},
				{"a", `count({__name__=~"pat_.*"})`, "bob", accessT0.Add(time.Minute)},
				{"a", `{__name__!~"pat_.*", job="x"}`, "", accessT0},
				{"b", `count({__name__=~"pat_.*"})`, "", accessT0},
			},
			want: map[string]AccessData{
				"a": data(nil, []AccessRecord{
					{Regex: "pat_.*", Negative: true, Count: 1, Last: accessT0, Labels: []string{"job"}, AllLabels: true},
					{Regex: "pat_.*", Count: 2, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}},
				}),
				"b": data(nil, []AccessRecord{{Regex: "pat_.*", Count: 1, Last: accessT0}}),
			},
			wantLen: 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewAccessStats(tc.maxMetrics, tc.maxUsers)
			recordAll(t, s, tc.queries...)
			require.Equal(t, tc.want, tenantData(s))
			require.Equal(t, tc.wantLen, s.Len())
			require.Equal(t, tc.wantDropped, s.Dropped())
		})
	}
}

func TestAccessStatsRecordQueryNilRefs(t *testing.T) {
	s := NewAccessStats(10, 10)
	s.RecordQuery("a", nil, "alice", accessT0)
	require.Empty(t, s.TenantSnapshots())
	require.Zero(t, s.Len())
}

func TestAccessStatsMergeTenant(t *testing.T) {
	tests := map[string]struct {
		maxMetrics, maxUsers int
		existing             []accessQuery
		tenant               string
		merge                AccessSnapshot
		want                 map[string]AccessData
		wantDropped          int
		wantLen              int
	}{
		"into existing statistics": {
			maxMetrics: 10, maxUsers: 10,
			existing: []accessQuery{{"a", `up`, "alice", accessT0}},
			tenant:   "a",
			merge: AccessSnapshot{Metrics: map[string]*Access{
				"up": {Count: 2, Last: accessT0.Add(time.Hour), Users: set("bob"), Labels: set("job")},
			}},
			want: map[string]AccessData{"a": data([]AccessRecord{
				{Name: "up", Count: 3, Last: accessT0.Add(time.Hour), Users: []string{"alice", "bob"}, Labels: []string{"job"}, AllLabels: true},
			}, nil)},
			wantLen: 1,
		},
		"older last kept out": {
			maxMetrics: 10, maxUsers: 10,
			existing: []accessQuery{{"a", `up`, "", accessT0}},
			tenant:   "a",
			merge:    AccessSnapshot{Metrics: map[string]*Access{"up": {Count: 1, Last: accessT0.Add(-time.Hour)}}},
			want:     map[string]AccessData{"a": data([]AccessRecord{{Name: "up", Count: 2, Last: accessT0, AllLabels: true}}, nil)},
			wantLen:  1,
		},
		"new tenant": {
			maxMetrics: 10, maxUsers: 10,
			existing: []accessQuery{{"a", `up`, "", accessT0}},
			tenant:   "b",
			merge:    AccessSnapshot{Metrics: map[string]*Access{"up": {Count: 5, Last: accessT0}}},
			want: map[string]AccessData{
				"a": data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, AllLabels: true}}, nil),
				"b": data([]AccessRecord{{Name: "up", Count: 5, Last: accessT0}}, nil),
			},
			wantLen: 2,
		},
		"metric bound across tenants reports the drops": {
			maxMetrics: 2, maxUsers: 10,
			existing: []accessQuery{{"a", `m1`, "", accessT0}, {"b", `m2`, "", accessT0}},
			tenant:   "a",
			merge: AccessSnapshot{Metrics: map[string]*Access{
				"m1": {Count: 1, Last: accessT0}, // tracked: merged
				"m2": {Count: 1, Last: accessT0}, // tracked in b only: dropped
				"m3": {Count: 1, Last: accessT0}, // new: dropped
			}},
			want: map[string]AccessData{
				"a": data([]AccessRecord{{Name: "m1", Count: 2, Last: accessT0, AllLabels: true}}, nil),
				"b": data([]AccessRecord{{Name: "m2", Count: 1, Last: accessT0, AllLabels: true}}, nil),
			},
			wantDropped: 2, wantLen: 2,
		},
		"users bounded": {
			maxMetrics: 10, maxUsers: 2,
			existing: []accessQuery{{"a", `up`, "alice", accessT0}, {"a", `up`, "bob", accessT0}},
			tenant:   "a",
			merge:    AccessSnapshot{Metrics: map[string]*Access{"up": {Count: 1, Last: accessT0, Users: set("alice", "carol")}}},
			want: map[string]AccessData{"a": data([]AccessRecord{
				{Name: "up", Count: 3, Last: accessT0, Users: []string{"alice", "bob"}, AllLabels: true},
			}, nil)},
			wantLen: 1,
		},
		"patterns merged by regex and sign": {
			maxMetrics: 0, maxUsers: 10,
			existing: []accessQuery{{"a", `count({__name__=~"pat_.*"})`, "alice", accessT0}},
			tenant:   "a",
			merge: AccessSnapshot{Patterns: []PatternAccess{
				pattern("pat_.*", false, &Access{Count: 2, Last: accessT0.Add(time.Minute), Users: set("bob"), AllLabels: true}),
				pattern("pat_.*", true, &Access{Count: 1, Last: accessT0, Labels: set("job")}),
			}},
			want: map[string]AccessData{"a": data(nil, []AccessRecord{
				{Regex: "pat_.*", Negative: true, Count: 1, Last: accessT0, Labels: []string{"job"}},
				{Regex: "pat_.*", Count: 3, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}, AllLabels: true},
			})},
		},
		"empty snapshot creates the tenant": {
			maxMetrics: 10, maxUsers: 10,
			tenant: "a",
			want:   map[string]AccessData{"a": data(nil, nil)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewAccessStats(tc.maxMetrics, tc.maxUsers)
			recordAll(t, s, tc.existing...)
			before := s.Dropped()
			require.Equal(t, tc.wantDropped, s.MergeTenant(tc.tenant, tc.merge))
			require.Equal(t, tc.want, tenantData(s))
			require.Equal(t, tc.wantLen, s.Len())
			require.Equal(t, uint64(tc.wantDropped), s.Dropped()-before)
		})
	}
}

func TestAccessStatsMergeIsTenantless(t *testing.T) {
	s := NewAccessStats(10, 10)
	s.Merge(AccessSnapshot{Metrics: map[string]*Access{"up": {Count: 1, Last: accessT0}}})
	require.Equal(t, map[string]AccessData{"": data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0}}, nil)}, tenantData(s))
}

func TestAccessStatsMergeTenantDoesNotAlias(t *testing.T) {
	s := NewAccessStats(10, 10)
	in := &Access{Count: 1, Last: accessT0, Users: set("alice"), Labels: set("job")}
	s.MergeTenant("a", AccessSnapshot{Metrics: map[string]*Access{"up": in}})
	in.Count = 100
	in.Users["mallory"] = struct{}{}
	in.Labels["evil"] = struct{}{}
	a, ok := s.Metric("a", "up", false)
	require.True(t, ok)
	require.Equal(t, &Access{Count: 1, Last: accessT0, Users: set("alice"), Labels: set("job")}, a)
}

func TestAccessStatsPatternBoundPerTenant(t *testing.T) {
	s := NewAccessStats(0, 10)
	var snap AccessSnapshot
	for i := range maxPatterns + 1 {
		snap.Patterns = append(snap.Patterns, pattern(fmt.Sprintf("p%d_.*", i), false, &Access{Count: 1}))
	}
	require.Equal(t, 1, s.MergeTenant("a", snap))
	require.Len(t, s.TenantSnapshots()["a"].Patterns, maxPatterns)
	// An already tracked pattern still merges at the bound.
	require.Zero(t, s.MergeTenant("a", AccessSnapshot{Patterns: []PatternAccess{pattern("p0_.*", false, &Access{Count: 1})}}))
	// The bound is per tenant.
	require.Zero(t, s.MergeTenant("b", AccessSnapshot{Patterns: []PatternAccess{pattern("x.*", false, &Access{Count: 1})}}))
	require.Equal(t, uint64(1), s.Dropped())
	require.Zero(t, s.Len())
}

func TestAccessStatsSnapshot(t *testing.T) {
	tests := map[string]struct {
		queries []accessQuery
		want    AccessData
	}{
		"empty": {want: data(nil, nil)},
		"tenants merged": {
			queries: []accessQuery{
				{"a", `up{job="x"}`, "alice", accessT0},
				{"b", `sum by (instance) (up)`, "bob", accessT0.Add(time.Minute)},
				{"b", `other`, "", accessT0},
				{"a", `count({__name__=~"pat_.*"})`, "alice", accessT0},
				{"b", `count({__name__=~"pat_.*"})`, "bob", accessT0.Add(time.Hour)},
				{"b", `{__name__!~"pat_.*", job="x"}`, "", accessT0},
			},
			want: data([]AccessRecord{
				{Name: "other", Count: 1, Last: accessT0, AllLabels: true},
				{Name: "up", Count: 2, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}, Labels: []string{"instance", "job"}, AllLabels: true},
			}, []AccessRecord{
				{Regex: "pat_.*", Negative: true, Count: 1, Last: accessT0, Labels: []string{"job"}, AllLabels: true},
				{Regex: "pat_.*", Count: 2, Last: accessT0.Add(time.Hour), Users: []string{"alice", "bob"}},
			}),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewAccessStats(10, 10)
			recordAll(t, s, tc.queries...)
			before := tenantData(s)
			snap := s.Snapshot()
			require.Equal(t, tc.want, snap.Data())
			require.Equal(t, len(tc.want.Metrics) == 0 && len(tc.want.Patterns) == 0, snap.Empty())

			// A deep copy: changing it leaves the store as it was.
			for _, a := range snap.Metrics {
				mutate(a)
			}
			for _, p := range snap.Patterns {
				mutate(p.Access)
			}
			require.Equal(t, before, tenantData(s))
		})
	}
}

// mutate changes every field of a.
func mutate(a *Access) {
	a.Count += 1000
	a.Last = a.Last.Add(time.Hour)
	if a.Users == nil {
		a.Users = map[string]struct{}{}
	}
	a.Users["mallory"] = struct{}{}
	if a.Labels == nil {
		a.Labels = map[string]struct{}{}
	}
	a.Labels["evil"] = struct{}{}
	a.AllLabels = !a.AllLabels
}

func TestAccessStatsTenantSnapshots(t *testing.T) {
	s := NewAccessStats(10, 10)
	recordAll(t, s,
		accessQuery{"a", `up`, "alice", accessT0},
		accessQuery{"b", `up`, "bob", accessT0},
		accessQuery{"b", `count({__name__=~"pat_.*"})`, "", accessT0},
	)
	want := map[string]AccessData{
		"a": data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, Users: []string{"alice"}, AllLabels: true}}, nil),
		"b": data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, Users: []string{"bob"}, AllLabels: true}},
			[]AccessRecord{{Regex: "pat_.*", Count: 1, Last: accessT0}}),
	}
	snaps := s.TenantSnapshots()
	require.Len(t, snaps, 2)
	for tenant, snap := range snaps {
		require.Equal(t, want[tenant], snap.Data(), tenant)
		for _, a := range snap.Metrics {
			mutate(a)
		}
		for _, p := range snap.Patterns {
			mutate(p.Access)
		}
	}
	require.Equal(t, want, tenantData(s), "snapshots are deep copies")
	require.Empty(t, NewAccessStats(10, 10).TenantSnapshots())
}

func TestAccessStatsDrain(t *testing.T) {
	s := NewAccessStats(2, 10)
	recordAll(t, s,
		accessQuery{"a", `m1`, "alice", accessT0},
		accessQuery{"b", `m2`, "", accessT0},
		accessQuery{"b", `m3`, "", accessT0}, // dropped
		accessQuery{"c", `count({__name__=~"pat_.*"})`, "", accessT0},
	)
	require.Equal(t, uint64(1), s.Dropped())

	got := map[string]AccessData{}
	for tenant, snap := range s.Drain() {
		got[tenant] = snap.Data()
	}
	require.Equal(t, map[string]AccessData{
		"a": data([]AccessRecord{{Name: "m1", Count: 1, Last: accessT0, Users: []string{"alice"}, AllLabels: true}}, nil),
		"b": data([]AccessRecord{{Name: "m2", Count: 1, Last: accessT0, AllLabels: true}}, nil),
		"c": data(nil, []AccessRecord{{Regex: "pat_.*", Count: 1, Last: accessT0}}),
	}, got)

	// Emptied, and the bound starts over.
	require.Zero(t, s.Len())
	require.Empty(t, s.TenantSnapshots())
	require.Empty(t, s.Drain())
	recordAll(t, s, accessQuery{"a", `m3`, "", accessT0}, accessQuery{"b", `m4`, "", accessT0})
	require.Equal(t, 2, s.Len())
	require.Equal(t, uint64(1), s.Dropped(), "drops are a running total")

	// Tenants left with nothing are not drained.
	_, ok := s.Metric("a", "m3", true)
	require.True(t, ok)
	drained := s.Drain()
	require.Len(t, drained, 1)
	require.Contains(t, drained, "b")
}

func TestAccessStatsMetric(t *testing.T) {
	tests := map[string]struct {
		tenant, metric string
		forget         bool
		want           *Access
		wantLen        int
	}{
		"copy": {
			tenant: "a", metric: "up",
			want:    &Access{Count: 1, Last: accessT0, Users: set("alice"), Labels: set("job"), AllLabels: true},
			wantLen: 2,
		},
		"forget": {
			tenant: "a", metric: "up", forget: true,
			want:    &Access{Count: 1, Last: accessT0, Users: set("alice"), Labels: set("job"), AllLabels: true},
			wantLen: 1,
		},
		"other tenant's metric": {tenant: "b", metric: "up", wantLen: 2},
		"unknown tenant":        {tenant: "z", metric: "up", forget: true, wantLen: 2},
		"unknown metric":        {tenant: "a", metric: "nope", forget: true, wantLen: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewAccessStats(2, 10)
			recordAll(t, s, accessQuery{"a", `up{job="x"}`, "alice", accessT0}, accessQuery{"b", `other`, "", accessT0})
			got, ok := s.Metric(tc.tenant, tc.metric, tc.forget)
			require.Equal(t, tc.want != nil, ok)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantLen, s.Len())

			again, ok := s.Metric(tc.tenant, tc.metric, false)
			if tc.want == nil || tc.forget {
				require.False(t, ok)
				require.Nil(t, again)
			} else {
				require.True(t, ok)
				mutate(got) // a copy: the store is unchanged
				require.Equal(t, tc.want.Count, again.Count)
				again, _ = s.Metric(tc.tenant, tc.metric, false)
				require.Equal(t, tc.want, again)
			}

			// Forgetting frees room under the bound.
			recordAll(t, s, accessQuery{"c", `fresh`, "", accessT0})
			_, ok = s.Metric("c", "fresh", false)
			require.Equal(t, tc.forget && tc.want != nil, ok)
		})
	}
}

func TestPatternKey(t *testing.T) {
	tests := map[string]struct {
		regex    string
		negative bool
		want     string
	}{
		"positive":       {regex: "pat_.*", want: "=pat_.*"},
		"negative":       {regex: "pat_.*", negative: true, want: "!pat_.*"},
		"empty positive": {want: "="},
		"empty negative": {negative: true, want: "!"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, PatternKey(tc.regex, tc.negative))
		})
	}
	require.NotEqual(t, PatternKey("x", true), PatternKey("x", false))
}

func TestAccessSnapshotData(t *testing.T) {
	tests := map[string]struct {
		snap     AccessSnapshot
		want     AccessData
		wantJSON string
	}{
		"empty gives empty lists": {
			want:     data(nil, nil),
			wantJSON: `{"metrics":[],"patterns":[]}`,
		},
		"sorted": {
			snap: AccessSnapshot{
				Metrics: map[string]*Access{
					"zeta":  {Count: 1, Last: accessT0, Users: set("carol", "alice", "bob"), Labels: set("path", "job", "instance")},
					"alpha": {Count: 2, Last: accessT0, AllLabels: true},
					"mu":    {Count: 3},
				},
				Patterns: []PatternAccess{
					pattern("b.*", false, &Access{Count: 1, Last: accessT0}),
					pattern("a.*", false, &Access{Count: 2, Last: accessT0}),
					pattern("a.*", true, &Access{Count: 3, Last: accessT0, Users: set("z", "y")}),
				},
			},
			want: data([]AccessRecord{
				{Name: "alpha", Count: 2, Last: accessT0, AllLabels: true},
				{Name: "mu", Count: 3},
				{Name: "zeta", Count: 1, Last: accessT0, Users: []string{"alice", "bob", "carol"}, Labels: []string{"instance", "job", "path"}},
			}, []AccessRecord{
				{Regex: "a.*", Negative: true, Count: 3, Last: accessT0, Users: []string{"y", "z"}},
				{Regex: "a.*", Count: 2, Last: accessT0},
				{Regex: "b.*", Count: 1, Last: accessT0},
			}),
			wantJSON: `{"metrics":[` +
				`{"name":"alpha","count":2,"last":"2026-01-01T00:00:00Z","all_labels":true},` +
				`{"name":"mu","count":3,"last":"0001-01-01T00:00:00Z"},` +
				`{"name":"zeta","count":1,"last":"2026-01-01T00:00:00Z","users":["alice","bob","carol"],"labels":["instance","job","path"]}` +
				`],"patterns":[` +
				`{"regex":"a.*","negative":true,"count":3,"last":"2026-01-01T00:00:00Z","users":["y","z"]},` +
				`{"regex":"a.*","count":2,"last":"2026-01-01T00:00:00Z"},` +
				`{"regex":"b.*","count":1,"last":"2026-01-01T00:00:00Z"}]}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.snap.Data()
			require.Equal(t, tc.want, got)
			b, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, tc.wantJSON, string(b))

			// And back.
			back, err := got.Snapshot()
			require.NoError(t, err)
			require.Equal(t, tc.want, back.Data())
		})
	}
}

func TestAccessDataSnapshot(t *testing.T) {
	tests := map[string]struct {
		in      AccessData
		want    AccessData
		wantErr string
	}{
		"empty": {want: data(nil, nil)},
		"metric without name": {
			in:      AccessData{Metrics: []AccessRecord{{Name: "up"}, {Count: 1}}},
			wantErr: "metrics[1]: a metric record needs a name and no regex",
		},
		"metric with regex": {
			in:      AccessData{Metrics: []AccessRecord{{Name: "up", Regex: "u.*"}}},
			wantErr: "metrics[0]: a metric record needs a name and no regex",
		},
		"pattern without regex": {
			in:      AccessData{Patterns: []AccessRecord{{Regex: "a.*"}, {Regex: "b.*"}, {Negative: true}}},
			wantErr: "patterns[2]: a pattern record needs a regex and no name",
		},
		"pattern with name": {
			in:      AccessData{Patterns: []AccessRecord{{Regex: "a.*", Name: "a"}}},
			wantErr: "patterns[0]: a pattern record needs a regex and no name",
		},
		"duplicate metrics merged": {
			in: AccessData{Metrics: []AccessRecord{
				{Name: "up", Count: 1, Last: accessT0.Add(time.Hour), Users: []string{"alice", "bob"}, Labels: []string{"job"}},
				{Name: "other", Count: 7},
				{Name: "up", Count: 2, Last: accessT0, Users: []string{"bob", "carol", "carol"}, Labels: []string{"instance"}, AllLabels: true},
			}},
			want: data([]AccessRecord{
				{Name: "other", Count: 7},
				{Name: "up", Count: 3, Last: accessT0.Add(time.Hour), Users: []string{"alice", "bob", "carol"}, Labels: []string{"instance", "job"}, AllLabels: true},
			}, nil),
		},
		"duplicate patterns merged, signs apart": {
			in: AccessData{Patterns: []AccessRecord{
				{Regex: "a.*", Count: 1, Last: accessT0, Users: []string{"alice"}},
				{Regex: "a.*", Negative: true, Count: 5},
				{Regex: "a.*", Count: 2, Last: accessT0.Add(time.Minute), Users: []string{"bob"}, Labels: []string{"job"}, AllLabels: true},
			}},
			want: data(nil, []AccessRecord{
				{Regex: "a.*", Negative: true, Count: 5},
				{Regex: "a.*", Count: 3, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}, Labels: []string{"job"}, AllLabels: true},
			}),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			snap, err := tc.in.Snapshot()
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				require.True(t, snap.Empty())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, snap.Data())
			for _, p := range snap.Patterns {
				require.NotNil(t, p.Pattern)
				require.Equal(t, !p.Pattern.Negative, p.Pattern.Matches("a_x"), "pattern %s", PatternKey(p.Pattern.Regex, p.Pattern.Negative))
			}
		})
	}
}

// decodeAccess decodes a /promgov/api/v1/usage/access answer, as an API
// client would.
func decodeAccess(body []byte) (AccessSnapshot, error) {
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return AccessSnapshot{}, fmt.Errorf("decode access answer: %w", err)
	}
	if env.Status != "success" {
		if env.Error == "" {
			env.Error = fmt.Sprintf("status %q", env.Status)
		}
		return AccessSnapshot{}, fmt.Errorf("access answer: %s", env.Error)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return AccessSnapshot{}, errors.New("access answer: no data")
	}
	var d AccessData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return AccessSnapshot{}, fmt.Errorf("decode access data: %w", err)
	}
	return d.Snapshot()
}

// normalizeData puts every time in UTC, so equal instants compare equal
// whatever zone the wire wrote them in.
func normalizeData(d AccessData) AccessData {
	norm := func(rs []AccessRecord) []AccessRecord {
		out := make([]AccessRecord, len(rs))
		for i, r := range rs {
			r.Last = r.Last.UTC()
			out[i] = r
		}
		return out
	}
	return AccessData{Metrics: norm(d.Metrics), Patterns: norm(d.Patterns)}
}

func TestAccessHandler(t *testing.T) {
	s := NewAccessStats(10, 10)
	recordAll(t, s,
		accessQuery{"a", `up{job="x"}`, "alice", accessT0},
		accessQuery{"b", `sum by (instance) (up)`, "bob", accessT0.Add(time.Minute)},
		accessQuery{"b", `count({__name__=~"pat_.*"})`, "", accessT0},
	)
	tests := map[string]struct {
		method, target, tenantHeader string
		wantCode                     int
		want                         AccessData
		wantErr                      string
	}{
		"every tenant merged": {
			method: http.MethodGet, target: PathAccess, wantCode: http.StatusOK,
			want: data([]AccessRecord{
				{Name: "up", Count: 2, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}, Labels: []string{"instance", "job"}, AllLabels: true},
			}, []AccessRecord{{Regex: "pat_.*", Count: 1, Last: accessT0}}),
		},
		"one tenant": {
			method: http.MethodGet, target: PathAccess + "?tenant=a", wantCode: http.StatusOK,
			want: data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, Users: []string{"alice"}, Labels: []string{"job"}, AllLabels: true}}, nil),
		},
		"other tenant": {
			method: http.MethodGet, target: PathAccess + "?tenant=b", wantCode: http.StatusOK,
			want: data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0.Add(time.Minute), Users: []string{"bob"}, Labels: []string{"instance"}}},
				[]AccessRecord{{Regex: "pat_.*", Count: 1, Last: accessT0}}),
		},
		"unknown tenant": {method: http.MethodGet, target: PathAccess + "?tenant=nobody", wantCode: http.StatusOK, want: data(nil, nil)},
		"empty tenant is every tenant": {
			method: http.MethodGet, target: PathAccess + "?tenant=", wantCode: http.StatusOK,
			want: data([]AccessRecord{
				{Name: "up", Count: 2, Last: accessT0.Add(time.Minute), Users: []string{"alice", "bob"}, Labels: []string{"instance", "job"}, AllLabels: true},
			}, []AccessRecord{{Regex: "pat_.*", Count: 1, Last: accessT0}}),
		},
		"tenant from the header alone": {
			method: http.MethodGet, target: PathAccess, tenantHeader: "a", wantCode: http.StatusOK,
			want: data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, Users: []string{"alice"}, Labels: []string{"job"}, AllLabels: true}}, nil),
		},
		"header and parameter agree": {
			method: http.MethodGet, target: PathAccess + "?tenant=a", tenantHeader: " a ", wantCode: http.StatusOK,
			want: data([]AccessRecord{{Name: "up", Count: 1, Last: accessT0, Users: []string{"alice"}, Labels: []string{"job"}, AllLabels: true}}, nil),
		},
		"header and parameter disagree": {
			method: http.MethodGet, target: PathAccess + "?tenant=b", tenantHeader: "a", wantCode: http.StatusBadRequest,
			wantErr: `access answer: tenant: the tenant parameter "b" and the X-Scope-OrgID header "a" name different tenants; send one, or the same in both`,
		},
		"post not allowed":   {method: http.MethodPost, target: PathAccess, wantCode: http.StatusMethodNotAllowed, wantErr: "access answer: use GET"},
		"delete not allowed": {method: http.MethodDelete, target: PathAccess + "?tenant=a", wantCode: http.StatusMethodNotAllowed, wantErr: "access answer: use GET"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.tenantHeader != "" {
				req.Header.Set("X-Scope-OrgID", tc.tenantHeader)
			}
			AccessHandler(s, "X-Scope-OrgID").ServeHTTP(rec, req)
			require.Equal(t, tc.wantCode, rec.Code)
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			snap, err := decodeAccess(rec.Body.Bytes())
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				var a apiAnswer
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
				require.Equal(t, "error", a.Status)
				require.Equal(t, "bad_data", a.ErrorType)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, snap.Data())
		})
	}
}

// fileStats is a store with metrics and patterns in two tenants.
func fileStats(t testing.TB) *AccessStats {
	s := NewAccessStats(100, 10)
	recordAll(t, s,
		accessQuery{"a", `up{job="x"}`, "alice", accessT0},
		accessQuery{"a", `sum by (instance) (up)`, "bob", accessT0.Add(time.Minute)},
		accessQuery{"a", `count({__name__=~"pat_.*"})`, "alice", accessT0},
		accessQuery{"b", `rate(requests_total[5m])`, "", accessT0.Add(time.Hour)},
		accessQuery{"b", `{__name__!~"pat_.*", job="x"}`, "carol", accessT0},
	)
	return s
}

func TestAccessFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.json")
	src := fileStats(t)
	size, err := WriteAccessFile(path, src)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, st.Size(), size)

	dst := NewAccessStats(100, 10)
	require.NoError(t, LoadAccessFile(path, dst))
	require.Equal(t, tenantData(src), tenantData(dst))
	require.Equal(t, src.Len(), dst.Len())

	// Loading into live statistics adds to them.
	require.NoError(t, LoadAccessFile(path, dst))
	a, ok := dst.Metric("a", "up", false)
	require.True(t, ok)
	require.Equal(t, uint64(4), a.Count)

	// Rewriting replaces the file.
	_, err = WriteAccessFile(path, NewAccessStats(100, 10))
	require.NoError(t, err)
	empty := NewAccessStats(100, 10)
	require.NoError(t, LoadAccessFile(path, empty))
	require.Empty(t, empty.TenantSnapshots())
}

func TestWriteAccessFileError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "access.json")
	_, err := WriteAccessFile(path, fileStats(t))
	require.Error(t, err)
	require.NoFileExists(t, path)
}

func TestLoadAccessFile(t *testing.T) {
	tests := map[string]struct {
		content *string // nil: no file
		dir     bool    // the path is a directory
		wantErr string
	}{
		"missing file":   {},
		"empty tenants":  {content: ptr(`{"version":1,"tenants":{}}`)},
		"null tenants":   {content: ptr(`{"version":1}`)},
		"corrupt":        {content: ptr(`{"version":1,"tenants":`), wantErr: "decode: "},
		"not json":       {content: ptr("\x00\x01garbage"), wantErr: "decode: "},
		"empty file":     {content: ptr(""), wantErr: "decode: "},
		"wrong version":  {content: ptr(`{"version":2,"tenants":{}}`), wantErr: "unsupported version 2 (want 1)"},
		"no version":     {content: ptr(`{"tenants":{}}`), wantErr: "unsupported version 0 (want 1)"},
		"invalid record": {content: ptr(`{"version":1,"tenants":{"a":{"metrics":[{"name":"up","count":1}]},"b":{"metrics":[{"count":1}]}}}`), wantErr: `tenant "b": metrics[0]: `},
		"a directory":    {dir: true, wantErr: "read access statistics "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.json")
			if tc.content != nil {
				require.NoError(t, os.WriteFile(path, []byte(*tc.content), 0o600))
			}
			if tc.dir {
				require.NoError(t, os.Mkdir(path, 0o700))
			}
			s := NewAccessStats(100, 10)
			err := LoadAccessFile(path, s)
			if tc.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.wantErr)
				require.ErrorContains(t, err, path, "the error names the file")
			}
			require.Empty(t, s.TenantSnapshots(), "nothing loaded")
		})
	}
}

func ptr[T any](v T) *T { return &v }

// snapshotErrors is the expected promgov_usage_access_snapshot_errors_total.
func snapshotErrors(n int) string {
	return fmt.Sprintf(`# HELP promgov_usage_access_snapshot_errors_total Query statistics snapshots that failed to load or write.
# TYPE promgov_usage_access_snapshot_errors_total counter
promgov_usage_access_snapshot_errors_total %d
`, n)
}

// runSnapshotter runs a until the returned stop is called, which waits for
// Run to return.
func runSnapshotter(t *testing.T, a *AccessSnapshotter) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
	}
}

func TestAccessSnapshotter(t *testing.T) {
	tests := map[string]struct {
		existing   *string // the file at start; nil: none
		badPath    bool    // the file cannot be written
		wantLoaded bool
		wantErrs   int // after the final write
		wantLast   bool
	}{
		"first start":       {wantLast: true},
		"restores at start": {existing: ptr("written"), wantLoaded: true, wantLast: true},
		"damaged file":      {existing: ptr(`{"version":1,"tenants":{"a":{"metrics":[{"coun`), wantErrs: 1, wantLast: true},
		"wrong version":     {existing: ptr(`{"version":9,"tenants":{}}`), wantErrs: 1, wantLast: true},
		"unwritable":        {badPath: true, wantErrs: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.json")
			if tc.badPath {
				path = filepath.Join(dir, "missing", "access.json")
			}
			want := fileStats(t)
			if tc.existing != nil {
				if *tc.existing == "written" {
					_, err := WriteAccessFile(path, want)
					require.NoError(t, err)
				} else {
					require.NoError(t, os.WriteFile(path, []byte(*tc.existing), 0o600))
				}
			}

			reg := prometheus.NewRegistry()
			stats := NewAccessStats(100, 10)
			a := NewAccessSnapshotter(stats, path, time.Hour, nil, reg)
			if tc.wantLoaded {
				require.Equal(t, tenantData(want), tenantData(stats))
			} else {
				require.Empty(t, stats.TenantSnapshots())
			}
			loadErrs := 0
			if tc.existing != nil && !tc.wantLoaded {
				loadErrs = 1
			}
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(snapshotErrors(loadErrs)), "promgov_usage_access_snapshot_errors_total"))

			if !tc.wantLoaded {
				stats.MergeTenant("a", want.TenantSnapshots()["a"])
				stats.MergeTenant("b", want.TenantSnapshots()["b"])
			}
			stop := runSnapshotter(t, a)
			stop() // the interval is an hour: only the final write happens

			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(snapshotErrors(tc.wantErrs)), "promgov_usage_access_snapshot_errors_total"))
			last := testutil.ToFloat64(a.last)
			if !tc.wantLast {
				require.Zero(t, last)
				require.NoFileExists(t, path)
				return
			}
			require.Positive(t, last)
			got := NewAccessStats(100, 10)
			require.NoError(t, LoadAccessFile(path, got))
			require.Equal(t, tenantData(want), tenantData(got))
		})
	}
}

func TestAccessSnapshotterWritesEveryInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.json")
	stats := fileStats(t)
	a := NewAccessSnapshotter(stats, path, time.Millisecond, nil, nil)
	stop := runSnapshotter(t, a)
	defer stop()
	// Written by the ticker, before Run is stopped. The file appears just
	// before the success time is set: wait for both.
	require.Eventually(t, func() bool {
		if testutil.ToFloat64(a.last) == 0 {
			return false
		}
		got := NewAccessStats(100, 10)
		if err := LoadAccessFile(path, got); err != nil {
			return false
		}
		return equalData(tenantData(stats), tenantData(got))
	}, 30*time.Second, time.Millisecond)
	require.Zero(t, testutil.ToFloat64(a.errs))
}

func equalData(a, b map[string]AccessData) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
