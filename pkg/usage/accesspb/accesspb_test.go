package accesspb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/promqlx"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func set(vs ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		m[v] = struct{}{}
	}
	return m
}

func pattern(regex string, negative bool, a *usage.Access) usage.PatternAccess {
	return usage.PatternAccess{Pattern: promqlx.NewPattern(regex, negative, promqlx.MetricUse{}), Access: a}
}

func TestStats(t *testing.T) {
	tests := map[string]struct {
		in      *usage.Access
		wantMsg *ingesterv1.AccessStats
		want    *usage.Access // after FromStats
	}{
		"full": {
			in: &usage.Access{Count: 3, Last: t0.Add(1500 * time.Millisecond), Users: set("carol", "alice"), Labels: set("job", "instance"), AllLabels: true},
			wantMsg: &ingesterv1.AccessStats{
				Count: 3, LastUnixMs: t0.Add(1500 * time.Millisecond).UnixMilli(),
				Users: []string{"alice", "carol"}, Labels: []string{"instance", "job"}, AllLabels: true,
			},
			want: &usage.Access{Count: 3, Last: t0.Add(1500 * time.Millisecond), Users: set("carol", "alice"), Labels: set("job", "instance"), AllLabels: true},
		},
		"zero last": {
			in:      &usage.Access{Count: 1},
			wantMsg: &ingesterv1.AccessStats{Count: 1},
			want:    &usage.Access{Count: 1, Labels: set()},
		},
		"empty": {
			in:      &usage.Access{},
			wantMsg: &ingesterv1.AccessStats{},
			want:    &usage.Access{Labels: set()},
		},
		"empty user set": {
			in:      &usage.Access{Count: 1, Users: set(), Labels: set()},
			wantMsg: &ingesterv1.AccessStats{Count: 1},
			want:    &usage.Access{Count: 1, Labels: set()},
		},
		"millisecond precision, in UTC": {
			in:      &usage.Access{Count: 1, Last: t0.Add(999_999 * time.Nanosecond).In(time.FixedZone("X", 3600))},
			wantMsg: &ingesterv1.AccessStats{Count: 1, LastUnixMs: t0.UnixMilli()},
			want:    &usage.Access{Count: 1, Last: t0, Labels: set()},
		},
		"before the epoch": {
			in:      &usage.Access{Count: 1, Last: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
			wantMsg: &ingesterv1.AccessStats{Count: 1, LastUnixMs: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()},
			want:    &usage.Access{Count: 1, Last: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), Labels: set()},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			msg := Stats(tc.in)
			require.True(t, proto.Equal(tc.wantMsg, msg), "got %v", msg)

			// Through the wire and back.
			b, err := proto.Marshal(msg)
			require.NoError(t, err)
			var decoded ingesterv1.AccessStats
			require.NoError(t, proto.Unmarshal(b, &decoded))
			require.Equal(t, tc.want, FromStats(&decoded))
		})
	}
}

func TestFromStatsNil(t *testing.T) {
	require.Equal(t, &usage.Access{Labels: set()}, FromStats(nil))
}

func TestAddMetricAddPattern(t *testing.T) {
	up := &usage.Access{Count: 2, Last: t0, Users: set("bob", "alice"), Labels: set("job"), AllLabels: true}
	other := &usage.Access{Count: 1}
	pos := &usage.Access{Count: 3, Last: t0.Add(time.Second), Labels: set("instance")}
	neg := &usage.Access{Count: 4, Users: set("carol")}

	req := &ingesterv1.RecordAccessRequest{Tenant: "a"}
	AddMetric(req, "up", up)
	AddMetric(req, "other", other)
	AddPattern(req, pattern("pat_.*", false, pos))
	AddPattern(req, pattern("pat_.*", true, neg))

	want := &ingesterv1.RecordAccessRequest{
		Tenant: "a",
		Metrics: []*ingesterv1.MetricAccess{
			{Metric: "up", Stats: &ingesterv1.AccessStats{Count: 2, LastUnixMs: t0.UnixMilli(), Users: []string{"alice", "bob"}, Labels: []string{"job"}, AllLabels: true}},
			{Metric: "other", Stats: &ingesterv1.AccessStats{Count: 1}},
		},
		Patterns: []*ingesterv1.PatternAccess{
			{Regex: "pat_.*", Stats: &ingesterv1.AccessStats{Count: 3, LastUnixMs: t0.Add(time.Second).UnixMilli(), Labels: []string{"instance"}}},
			{Regex: "pat_.*", Negative: true, Stats: &ingesterv1.AccessStats{Count: 4, Users: []string{"carol"}}},
		},
	}
	require.True(t, proto.Equal(want, req), "got %v", req)

	// And back, as an ingester reads it.
	snap, err := FromRequest(req)
	require.NoError(t, err)
	wantSnap := usage.AccessSnapshot{
		Metrics:  map[string]*usage.Access{"up": up, "other": other},
		Patterns: []usage.PatternAccess{pattern("pat_.*", false, pos), pattern("pat_.*", true, neg)},
	}
	require.Equal(t, wantSnap.Data(), snap.Data())
}

func TestFromRequest(t *testing.T) {
	stats := func(count uint64) *ingesterv1.AccessStats {
		return &ingesterv1.AccessStats{Count: count, LastUnixMs: t0.UnixMilli()}
	}
	tests := map[string]struct {
		req     *ingesterv1.RecordAccessRequest
		want    usage.AccessData
		wantErr string
	}{
		"nil": {
			want: usage.AccessData{Metrics: []usage.AccessRecord{}, Patterns: []usage.AccessRecord{}},
		},
		"empty": {
			req:  &ingesterv1.RecordAccessRequest{Tenant: "a"},
			want: usage.AccessData{Metrics: []usage.AccessRecord{}, Patterns: []usage.AccessRecord{}},
		},
		"metrics and patterns": {
			req: &ingesterv1.RecordAccessRequest{
				Metrics: []*ingesterv1.MetricAccess{
					{Metric: "up", Stats: &ingesterv1.AccessStats{Count: 2, LastUnixMs: t0.UnixMilli(), Users: []string{"alice"}, Labels: []string{"job"}, AllLabels: true}},
					{Metric: "no_stats"},
				},
				Patterns: []*ingesterv1.PatternAccess{
					{Regex: "pat_.*", Negative: true, Stats: stats(1)},
					{Regex: "(", Stats: stats(2)}, // kept: an invalid regex matches everything
				},
			},
			want: usage.AccessData{
				Metrics: []usage.AccessRecord{
					{Name: "no_stats"},
					{Name: "up", Count: 2, Last: t0, Users: []string{"alice"}, Labels: []string{"job"}, AllLabels: true},
				},
				Patterns: []usage.AccessRecord{
					{Regex: "pat_.*", Negative: true, Count: 1, Last: t0},
					{Regex: "(", Count: 2, Last: t0},
				},
			},
		},
		"duplicate metrics added": {
			req: &ingesterv1.RecordAccessRequest{Metrics: []*ingesterv1.MetricAccess{
				{Metric: "up", Stats: &ingesterv1.AccessStats{Count: 1, LastUnixMs: t0.Add(time.Hour).UnixMilli(), Users: []string{"alice"}, Labels: []string{"job"}}},
				{Metric: "up", Stats: &ingesterv1.AccessStats{Count: 2, LastUnixMs: t0.UnixMilli(), Users: []string{"bob"}, Labels: []string{"instance"}, AllLabels: true}},
			}},
			want: usage.AccessData{
				Metrics: []usage.AccessRecord{
					{Name: "up", Count: 3, Last: t0.Add(time.Hour), Users: []string{"alice", "bob"}, Labels: []string{"instance", "job"}, AllLabels: true},
				},
				Patterns: []usage.AccessRecord{},
			},
		},
		"empty metric name": {
			req: &ingesterv1.RecordAccessRequest{Metrics: []*ingesterv1.MetricAccess{
				{Metric: "up", Stats: stats(1)}, {Stats: stats(1)},
			}},
			wantErr: "metrics[1]: empty metric name",
		},
		"empty regex": {
			req: &ingesterv1.RecordAccessRequest{
				Metrics:  []*ingesterv1.MetricAccess{{Metric: "up", Stats: stats(1)}},
				Patterns: []*ingesterv1.PatternAccess{{Negative: true, Stats: stats(1)}},
			},
			wantErr: "patterns[0]: empty regex",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			snap, err := FromRequest(tc.req)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				require.True(t, snap.Empty())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, snap.Data())
		})
	}
}

// TestFromRequestMerges checks that a request's statistics reach the store
// whole: duplicate patterns are merged by the store under one key.
func TestFromRequestMerges(t *testing.T) {
	req := &ingesterv1.RecordAccessRequest{Patterns: []*ingesterv1.PatternAccess{
		{Regex: "pat_.*", Stats: &ingesterv1.AccessStats{Count: 1, Users: []string{"alice"}}},
		{Regex: "pat_.*", Stats: &ingesterv1.AccessStats{Count: 2, Users: []string{"bob"}, AllLabels: true}},
	}}
	snap, err := FromRequest(req)
	require.NoError(t, err)
	s := usage.NewAccessStats(10, 10)
	require.Zero(t, s.MergeTenant("a", snap))
	require.Equal(t, []usage.AccessRecord{{Regex: "pat_.*", Count: 3, Users: []string{"alice", "bob"}, AllLabels: true}},
		s.TenantSnapshots()["a"].Data().Patterns)
}

// TestResponseRoundTrip: a GetAccess answer carries a snapshot whole.
func TestResponseRoundTrip(t *testing.T) {
	up := &usage.Access{Count: 2, Last: t0, Users: set("alice"), Labels: set("job"), AllLabels: true}
	snap := usage.AccessSnapshot{
		Metrics:  map[string]*usage.Access{"up": up, "other": {Count: 1, Labels: set()}},
		Patterns: []usage.PatternAccess{pattern("pat_.*", true, &usage.Access{Count: 3, Labels: set()})},
	}
	b, err := proto.Marshal(Response(snap))
	require.NoError(t, err)
	var resp ingesterv1.GetAccessResponse
	require.NoError(t, proto.Unmarshal(b, &resp))
	back, err := FromResponse(&resp)
	require.NoError(t, err)
	require.Equal(t, snap.Data(), back.Data())
	require.Equal(t, []string{"other", "up"}, []string{resp.GetMetrics()[0].GetMetric(), resp.GetMetrics()[1].GetMetric()}, "sorted")
}

// FuzzFromResponse: any GetAccess answer decodes to an error or to a
// snapshot that survives another round trip unchanged; nothing panics.
func FuzzFromResponse(f *testing.F) {
	seed := func(m *ingesterv1.GetAccessResponse) {
		b, err := proto.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
	seed(&ingesterv1.GetAccessResponse{})
	seed(&ingesterv1.GetAccessResponse{
		Metrics:  []*ingesterv1.MetricAccess{{Metric: "up", Stats: &ingesterv1.AccessStats{Count: 1, LastUnixMs: t0.UnixMilli(), Users: []string{"a", "a"}}}, {Metric: "up"}},
		Patterns: []*ingesterv1.PatternAccess{{Regex: "(", Negative: true, Stats: &ingesterv1.AccessStats{Labels: []string{"b", "a"}}}},
	})
	seed(&ingesterv1.GetAccessResponse{Metrics: []*ingesterv1.MetricAccess{{}}})
	f.Add([]byte("not protobuf"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp ingesterv1.GetAccessResponse
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		snap, err := FromResponse(&resp)
		if err != nil {
			require.True(t, snap.Empty())
			return
		}
		again, err := FromResponse(Response(snap))
		require.NoError(t, err)
		require.Equal(t, snap.Data(), again.Data())
	})
}
