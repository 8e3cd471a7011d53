package ratelimit

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock the test advances.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTest(cfg Config, members int) (*Limiter, *fakeClock) {
	l := New(cfg, func() int { return members }, prometheus.NewRegistry())
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l.now = c.now
	return l, c
}

// admitted sends a request of size every step for d and returns the
// samples admitted.
func admitted(l *Limiter, c *fakeClock, tenant string, size int, step, d time.Duration) int {
	n := 0
	for end := c.t.Add(d); c.t.Before(end); c.t = c.t.Add(step) {
		if l.Admit(tenant, size) == nil {
			n += size
		}
	}
	return n
}

func TestGlobalStrategy(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg           Config
		members       int
		tenant        string
		wantPerSecond float64 // on this distributor, after the burst
	}{
		"default limit, one distributor":  {Config{Limit: Limit{SamplesPerSecond: 1000, Burst: 1000}}, 1, "a", 1000},
		"default limit, two distributors": {Config{Limit: Limit{SamplesPerSecond: 1000, Burst: 1000}}, 2, "a", 500},
		"override, four distributors":     {Config{Limit: Limit{SamplesPerSecond: 1000}, Tenants: map[string]Limit{"big": {SamplesPerSecond: 8000, Burst: 4000}}}, 4, "big", 2000},
	} {
		t.Run(name, func(t *testing.T) {
			l, c := newTest(tc.cfg, tc.members)
			burst := tc.cfg.limitFor(tc.tenant).burst()
			// Offered: twice the share, in requests of 100.
			got := admitted(l, c, tc.tenant, 100, time.Duration(float64(time.Second)*100/(2*tc.wantPerSecond)), 20*time.Second)
			rate := float64(got-burst) / 20
			require.InDelta(t, tc.wantPerSecond, rate, tc.wantPerSecond*0.02)
		})
	}
}

func TestTenantsAreIndependent(t *testing.T) {
	l, c := newTest(Config{Limit: Limit{SamplesPerSecond: 100, Burst: 100}}, 1)
	require.NoError(t, l.Admit("a", 100))
	var lim *ErrLimited
	require.True(t, errors.As(l.Admit("a", 50), &lim))
	require.Equal(t, 500*time.Millisecond, lim.RetryAfter)
	require.NoError(t, l.Admit("b", 100), "another tenant has its own bucket")
	c.t = c.t.Add(500 * time.Millisecond)
	require.NoError(t, l.Admit("a", 50))
	require.Equal(t, 50.0, testutil.ToFloat64(l.limitedSamples.WithLabelValues("a")))
	require.Equal(t, 1.0, testutil.ToFloat64(l.limitedRequests.WithLabelValues("a")))
}

func TestRequestOverBurst(t *testing.T) {
	l, _ := newTest(Config{Limit: Limit{SamplesPerSecond: 100, Burst: 100}}, 1)
	err := l.Admit("a", 101)
	require.ErrorContains(t, err, "exceed the burst")
}

func TestNoLimit(t *testing.T) {
	l, _ := newTest(Config{Tenants: map[string]Limit{"x": {SamplesPerSecond: 1}}}, 1)
	require.NoError(t, l.Admit("a", 1e9))
}

func TestReloadAndIdleBuckets(t *testing.T) {
	l, c := newTest(Config{Limit: Limit{SamplesPerSecond: 10}}, 1)
	for i := range maxIdleBuckets + 10 {
		require.NoError(t, l.Admit(string(rune('a'+i%26))+time.Duration(i).String(), 1))
		c.t = c.t.Add(time.Millisecond)
	}
	require.LessOrEqual(t, len(l.buckets), maxIdleBuckets)
	l.SetConfig(Config{})
	require.NoError(t, l.Admit("a", 1e6))
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"negative rate":  {Config{Limit: Limit{SamplesPerSecond: -1}}, "rate_limits.samples_per_second"},
		"negative burst": {Config{Tenants: map[string]Limit{"a": {Burst: -1}}}, `rate_limits.tenants["a"].burst`},
		"empty tenant":   {Config{Tenants: map[string]Limit{"": {}}}, "empty tenant"},
	} {
		t.Run(name, func(t *testing.T) { require.ErrorContains(t, tc.cfg.Validate(), tc.want) })
	}
}

// TestMetricsTenantLabelBounded: refusals of thousands of tenants keep the
// limiter's metrics to MaxLabelledTenants tenant series plus __other__;
// a tenant with an override keeps its own label past the bound.
func TestMetricsTenantLabelBounded(t *testing.T) {
	l, _ := newTest(Config{Limit: Limit{SamplesPerSecond: 1, Burst: 1},
		Tenants: map[string]Limit{"vip": {SamplesPerSecond: 1, Burst: 1}}}, 1)
	const tenants = 3000
	for i := range tenants {
		require.Error(t, l.Admit(fmt.Sprintf("t%d", i), 2))
	}
	require.Error(t, l.Admit("vip", 2))
	require.Equal(t, MaxLabelledTenants+2, testutil.CollectAndCount(l.limitedSamples), "first tenants, __other__ and the overridden tenant")
	require.Equal(t, MaxLabelledTenants+2, testutil.CollectAndCount(l.limitedRequests))
	require.Equal(t, float64(tenants-MaxLabelledTenants), testutil.ToFloat64(l.limitedRequests.WithLabelValues(OtherTenant)))
	require.Equal(t, 1.0, testutil.ToFloat64(l.limitedRequests.WithLabelValues("t0")))
	require.Equal(t, 1.0, testutil.ToFloat64(l.limitedRequests.WithLabelValues("vip")))
}
