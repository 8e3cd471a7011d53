package usage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeSource serves fixed consumers and can be made to fail.
type fakeSource struct {
	name string

	mu        sync.Mutex
	consumers []Consumer
	fail      bool
	parseErrs int
	loads     int
}

var _ Source = (*fakeSource)(nil)

func (s *fakeSource) Name() string { return s.name }
func (s *fakeSource) Kind() string { return "fake" }

func (s *fakeSource) Load(context.Context) (*LoadResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.fail {
		return nil, errors.New("backend unavailable")
	}
	return &LoadResult{Consumers: s.consumers, Items: len(s.consumers), Expressions: len(s.consumers), ParseErrors: s.parseErrs}, nil
}

func (s *fakeSource) setFail(f bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

func (s *fakeSource) loadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

func consumer(t testing.TB, kind, id, records, expr string) Consumer {
	t.Helper()
	r, err := promqlx.Extract(expr)
	require.NoError(t, err)
	return Consumer{UsedBy: UsedBy{Kind: kind, ID: id, Title: id}, Records: records, Refs: r}
}

func query(t testing.TB, s *AccessStats, expr, user string, at time.Time) {
	t.Helper()
	r, err := promqlx.Extract(expr)
	require.NoError(t, err)
	s.RecordQuery("anonymous", r, user, at)
}

// scenario is the shared fixture: a dashboard, an alert, two recording
// rules (one feeding the dashboard, one dead) and traffic.
func scenarioConsumers(t testing.TB) []Consumer {
	return []Consumer{
		consumer(t, KindDashboard, "dash", "", `sum by (job) (up) + on (job) group_left sum by (job) (job:requests:rate5m)`),
		consumer(t, KindRecordingRule, "g/job:requests:rate5m", "job:requests:rate5m", `sum by (job) (rate(requests_total[5m]))`),
		consumer(t, KindRecordingRule, "g/dead:rule", "dead:rule", `sum(dead_input)`),
		consumer(t, KindAlert, "g/Errors", "", `sum by (job) (rate(errors_total[5m])) > 1`),
	}
}

func scenarioCosts() StaticCosts {
	return StaticCosts{
		{Name: "up", Series: 10, SamplesRate: 1, Labels: []LabelCost{{Name: "job", Values: 2}, {Name: "instance", Values: 10, SeriesWithout: 2}}},
		{Name: "requests_total", Series: 300, SamplesRate: 30, Labels: []LabelCost{{Name: "job", Values: 2}, {Name: "instance", Values: 10, SeriesWithout: 30}, {Name: "path", Values: 15, SeriesWithout: 20}}},
		{Name: "dead_input", Series: 50, SamplesRate: 5, Labels: []LabelCost{{Name: "job"}}},
		{Name: "errors_total", Series: 4, SamplesRate: 0.4, Labels: []LabelCost{{Name: "job"}}},
		{Name: "queried_metric", Series: 7, SamplesRate: 0.7, Labels: []LabelCost{{Name: "instance"}}},
		{Name: "pat_x", Series: 3, SamplesRate: 0.3, Labels: []LabelCost{{Name: "job"}}},
		{Name: "lonely", Series: 1000, SamplesRate: 100, Labels: []LabelCost{{Name: "job"}}},
		{Name: "lonely_bucket", Series: 900, SamplesRate: 90, Labels: []LabelCost{{Name: "le"}}},
	}
}

func scenarioAccess(t testing.TB, at time.Time) *AccessStats {
	s := NewAccessStats(1000, 10)
	query(t, s, `queried_metric`, "alice", at)
	query(t, s, `queried_metric{instance="a"}`, "bob", at.Add(time.Minute))
	query(t, s, `rate(queried_metric[5m])`, "alice", at)
	query(t, s, `count({__name__=~"pat_.*"})`, "", at)
	return s
}
