package usage

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

type policyEnv struct {
	clock  *fakeClock
	src    *fakeSource
	access *AccessStats
	mgr    *Manager
	reg    *prometheus.Registry
}

func newPolicyEnv(t *testing.T, drop DropConfig) *policyEnv {
	t.Helper()
	e := &policyEnv{
		clock:  &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		src:    &fakeSource{name: "dashboards", consumers: scenarioConsumers(t)},
		access: NewAccessStats(1000, 10),
		reg:    prometheus.NewRegistry(),
	}
	cfg := DefaultConfig()
	cfg.DropUnused = drop
	m, err := NewManager(cfg, Deps{
		Sources: []Source{e.src}, Access: e.access, Costs: scenarioCosts(),
		Logger: slog.New(slog.DiscardHandler), Registerer: e.reg, Now: e.clock.Now,
	})
	require.NoError(t, err)
	e.mgr = m
	return e
}

// step advances the clock and runs one reload round.
func (e *policyEnv) step(d time.Duration) {
	e.clock.Add(d)
	e.mgr.Refresh(context.Background())
}

func (e *policyEnv) blocked(reason string) float64 {
	return testutil.ToFloat64(e.mgr.policy.blocked.WithLabelValues(reason))
}

func TestPolicyEnforceAfterGrace(t *testing.T) {
	e := newPolicyEnv(t, DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour})
	p := e.mgr.Policy()

	e.step(0)
	require.Equal(t, Verdict{}, p.Check("lonely"), "usage data younger than the grace period: nothing dropped")
	require.Equal(t, 1.0, e.blocked(BlockedDataTooYoung))
	require.Equal(t, BlockedDataTooYoung, p.Status().Reason)

	e.step(59 * time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"))

	e.step(time.Minute)
	require.Equal(t, Verdict{Drop: true, WouldDrop: true}, p.Check("lonely"))
	require.Equal(t, Verdict{Drop: true, WouldDrop: true}, p.Check("dead_input"), "input of a dead recording rule is dropped")
	require.Equal(t, Verdict{}, p.Check("up"), "partially used metrics are kept")
	require.Equal(t, Verdict{}, p.Check("requests_total"), "inputs of live recording rules are kept")
	require.Equal(t, []string{"dead_input", "lonely", "lonely_bucket", "pat_x", "queried_metric"}, p.Status().Candidates)
	require.Equal(t, 0.0, e.blocked(BlockedDataTooYoung))
	require.Equal(t, 5.0, testutil.ToFloat64(p.candidates))
	require.True(t, p.Unused("lonely"))
	require.False(t, p.Unused("up"))

	// The generation changes with the selection, and only then.
	gen := p.Generation()
	e.step(time.Minute)
	require.Equal(t, gen, p.Generation(), "same selection, same generation")

	// A query makes a metric used: it leaves the drop set on the next round,
	// and its unused clock restarts if it becomes unused again.
	query(t, e.access, `queried_metric`, "carol", e.clock.Now())
	e.step(time.Minute)
	require.Equal(t, Verdict{}, p.Check("queried_metric"))
	require.False(t, p.Unused("queried_metric"))
	require.NotEqual(t, gen, p.Generation(), "a metric left the selection")
}

// TestPolicyOffStillSelectsForRules: with mode off the policy drops
// nothing itself, but rules of kind unused still get the selection.
func TestPolicyOffStillSelectsForRules(t *testing.T) {
	e := newPolicyEnv(t, DropConfig{Mode: ModeOff, GracePeriod: time.Hour})
	p := e.mgr.Policy()
	e.step(0)
	e.step(61 * time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"))
	require.Empty(t, p.Status().Candidates)
	require.True(t, p.Unused("lonely"))
	require.False(t, p.Unused("up"))
}

func TestPolicyShadowReportsWhatEnforceWouldDrop(t *testing.T) {
	shadow := newPolicyEnv(t, DropConfig{Mode: ModeShadow, GracePeriod: time.Hour})
	enforce := newPolicyEnv(t, DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour})
	for _, d := range []time.Duration{0, 30 * time.Minute, 31 * time.Minute} {
		shadow.step(d)
		enforce.step(d)
		require.Equal(t, enforce.mgr.Policy().Status().Candidates, shadow.mgr.Policy().Status().Candidates)
	}
	require.NotEmpty(t, shadow.mgr.Policy().Status().Candidates)
	for _, name := range shadow.mgr.Policy().Status().Candidates {
		require.Equal(t, Verdict{WouldDrop: true}, shadow.mgr.Policy().Check(name), name)
		require.Equal(t, Verdict{Drop: true, WouldDrop: true}, enforce.mgr.Policy().Check(name), name)
	}
	for _, name := range shadow.mgr.Policy().Status().Candidates {
		require.True(t, shadow.mgr.Policy().Unused(name), name)
	}
}

func TestPolicyFailSafe(t *testing.T) {
	e := newPolicyEnv(t, DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour})
	p := e.mgr.Policy()
	e.step(0)
	e.step(2 * time.Hour)
	require.True(t, p.Check("lonely").Drop)

	// A source breaks: nothing is dropped, and the metric says why.
	e.src.setFail(true)
	e.step(time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"))
	require.Equal(t, 1.0, e.blocked(BlockedSourceUnhealthy))
	require.Empty(t, p.Status().Candidates)
	st := e.mgr.Sources()[0]
	require.False(t, st.Healthy)
	require.Equal(t, "backend unavailable", st.LastError)
	require.NotNil(t, st.LastSuccess, "last successful load is kept")

	// It recovers: the grace period starts again from the recovery.
	e.src.setFail(false)
	e.step(time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"))
	require.Equal(t, 0.0, e.blocked(BlockedSourceUnhealthy))
	require.Equal(t, 1.0, e.blocked(BlockedDataTooYoung))
	e.step(59 * time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"))
	e.step(time.Minute)
	require.True(t, p.Check("lonely").Drop)
}

func TestPolicyParseErrorsBlock(t *testing.T) {
	tests := map[string]struct {
		ignore   bool
		wantDrop bool
	}{
		"parse errors block by default": {wantDrop: false},
		"unless ignored":                {ignore: true, wantDrop: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newPolicyEnv(t, DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour, IgnoreParseErrors: tc.ignore})
			e.src.parseErrs = 1
			e.step(0)
			e.step(2 * time.Hour)
			require.Equal(t, tc.wantDrop, e.mgr.Policy().Check("lonely").Drop)
		})
	}
}

func TestPolicyAllowDeny(t *testing.T) {
	tests := map[string]struct {
		allow, deny []string
		want        []string
	}{
		"everything":      {want: []string{"dead_input", "lonely", "lonely_bucket", "pat_x", "queried_metric"}},
		"allow limits":    {allow: []string{"lonely.*"}, want: []string{"lonely", "lonely_bucket"}},
		"deny protects":   {deny: []string{"lonely.*", "pat_.*"}, want: []string{"dead_input", "queried_metric"}},
		"deny wins":       {allow: []string{"lonely"}, deny: []string{"lonely"}, want: []string{}},
		"anchored regexp": {allow: []string{"lonely"}, want: []string{"lonely"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newPolicyEnv(t, DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour, Allow: tc.allow, Deny: tc.deny})
			e.step(0)
			e.step(time.Hour)
			require.Equal(t, tc.want, e.mgr.Policy().Status().Candidates)
		})
	}
}

func TestPolicyOff(t *testing.T) {
	e := newPolicyEnv(t, DropConfig{Mode: ModeOff})
	e.step(0)
	e.step(1000 * time.Hour)
	require.Equal(t, Verdict{}, e.mgr.Policy().Check("lonely"))
	require.False(t, e.mgr.Policy().Status().Blocked)
	require.Equal(t, 0.0, e.blocked(BlockedDataTooYoung))
}

func BenchmarkPolicyCheck(b *testing.B) {
	p, err := NewPolicy(DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour}, nil)
	require.NoError(b, err)
	rep := &Report{}
	for _, c := range scenarioCosts() {
		rep.Metrics = append(rep.Metrics, MetricReport{Name: c.Name, State: StateUnused})
	}
	t0 := time.Unix(0, 0)
	p.Update(rep, Health{Healthy: true, Since: t0}, t0)
	p.Update(rep, Health{Healthy: true, Since: t0}, t0.Add(2*time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		p.Check("kept_metric_name")
		p.Check("lonely")
	}
}

// flakyAccess is an AccessSource whose reads fail on demand, like a
// distributor's fan-out when an ingester does not answer.
type flakyAccess struct {
	*AccessStats
	fail atomic.Bool
}

func (f *flakyAccess) AccessSnapshot(ctx context.Context) (AccessSnapshot, error) {
	snap, _ := f.AccessStats.AccessSnapshot(ctx)
	if f.fail.Load() {
		return snap, errors.New("ingester i-2 (127.0.0.1:9): connection refused")
	}
	return snap, nil
}

// TestPolicyFailSafeOnIncompleteQueryStats: when the query statistics
// cannot be read from every ingester, they are listed as an unhealthy
// source and nothing is dropped; the grace period restarts on recovery.
func TestPolicyFailSafeOnIncompleteQueryStats(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	access := &flakyAccess{AccessStats: NewAccessStats(1000, 10)}
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.DropUnused = DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour}
	m, err := NewManager(cfg, Deps{
		Sources: []Source{&fakeSource{name: "dashboards", consumers: scenarioConsumers(t)}},
		Access:  access, AccessName: "ingesters", Costs: scenarioCosts(),
		Logger: slog.New(slog.DiscardHandler), Registerer: reg, Now: clock.Now,
	})
	require.NoError(t, err)
	step := func(d time.Duration) {
		clock.Add(d)
		m.Refresh(context.Background())
	}
	p := m.Policy()
	step(0)
	step(2 * time.Hour)
	require.True(t, p.Check("lonely").Drop)
	sources := m.Sources()
	require.Len(t, sources, 2)
	require.Equal(t, KindQueryStats, sources[1].Kind)
	require.Equal(t, "ingesters", sources[1].Name)
	require.True(t, sources[1].Healthy)

	access.fail.Store(true)
	step(time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"), "incomplete statistics: nothing is dropped")
	require.Equal(t, BlockedSourceUnhealthy, p.Status().Reason)
	st := m.Sources()[1]
	require.False(t, st.Healthy)
	require.Contains(t, st.LastError, "connection refused")
	require.Equal(t, 1.0, testutil.ToFloat64(m.loads.WithLabelValues(KindQueryStats, "failure")))

	access.fail.Store(false)
	step(time.Minute)
	require.Equal(t, Verdict{}, p.Check("lonely"), "the grace period restarts on recovery")
	step(time.Hour)
	require.True(t, p.Check("lonely").Drop)
}

// TestPolicyWouldDrop: what a candidate drop configuration would select
// now, from the running policy's clocks, whatever the running policy's own
// mode; it changes nothing.
func TestPolicyWouldDrop(t *testing.T) {
	e := newPolicyEnv(t, DropConfig{Mode: ModeOff, GracePeriod: time.Hour})
	p := e.mgr.Policy()
	enforce := DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour}

	names, blocked, err := p.WouldDrop(enforce, e.clock.Now())
	require.NoError(t, err)
	require.Empty(t, names)
	require.Equal(t, BlockedNoData, blocked, "before any classification")

	e.step(0)
	names, blocked, err = p.WouldDrop(enforce, e.clock.Now())
	require.NoError(t, err)
	require.Empty(t, names)
	require.Equal(t, BlockedDataTooYoung, blocked)

	e.step(time.Hour)
	all := map[string]bool{"dead_input": true, "lonely": true, "lonely_bucket": true, "pat_x": true, "queried_metric": true}
	for name, tc := range map[string]struct {
		cfg     DropConfig
		want    map[string]bool
		blocked string
	}{
		"enforce":            {cfg: enforce, want: all},
		"shadow selects too": {cfg: DropConfig{Mode: ModeShadow, GracePeriod: time.Hour}, want: all},
		"longer grace":       {cfg: DropConfig{Mode: ModeEnforce, GracePeriod: 2 * time.Hour}, want: map[string]bool{}, blocked: BlockedDataTooYoung},
		"deny":               {cfg: DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour, Deny: []string{"lonely.*", "pat_.*"}}, want: map[string]bool{"dead_input": true, "queried_metric": true}},
		"allow":              {cfg: DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour, Allow: []string{"dead_.*"}}, want: map[string]bool{"dead_input": true}},
		"off":                {cfg: DropConfig{Mode: ModeOff}, want: map[string]bool{}},
	} {
		t.Run(name, func(t *testing.T) {
			names, blocked, err := p.WouldDrop(tc.cfg, e.clock.Now())
			require.NoError(t, err)
			require.Equal(t, tc.blocked, blocked)
			require.Equal(t, tc.want, names)
		})
	}
	require.Equal(t, Verdict{}, p.Check("lonely"), "the running policy (off) is unchanged")
	_, _, err = p.WouldDrop(DropConfig{Mode: "sometimes"}, e.clock.Now())
	require.ErrorContains(t, err, "usage.drop_unused.mode")
}
