// Package ratelimit limits each tenant's ingestion rate (samples per
// second, with a burst) across a cluster of distributors by the "global"
// strategy: each distributor enforces the tenant's limit divided by the
// number of healthy distributors in the ring, so with senders spread over
// the distributors the cluster admits the configured rate. The burst is
// each distributor's own (it bounds the largest request and short spikes).
package ratelimit

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Limit is one tenant's ingestion limit. A zero SamplesPerSecond is no
// limit.
type Limit struct {
	// SamplesPerSecond is the cluster-wide rate of samples and histograms.
	SamplesPerSecond float64 `yaml:"samples_per_second"`
	// Burst is how many samples one distributor admits at once above the
	// rate (and so the largest request it admits).
	Burst int `yaml:"burst"`
}

// Config is the defaults of every tenant and the overrides of some (YAML
// section `rate_limits:`).
type Config struct {
	Limit   `yaml:",inline"`
	Tenants map[string]Limit `yaml:"tenants"`
}

// RegisterFlags registers the default limit under prefix ("rate-limit.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.Float64Var(&c.SamplesPerSecond, prefix+"samples-per-second", 0, "Default per-tenant ingestion rate, samples (and histograms) per second, cluster-wide, divided among the healthy distributors; 0: no limit. Overrides per tenant: rate_limits.tenants in the config file.")
	fs.IntVar(&c.Burst, prefix+"burst", 0, "Default per-tenant burst of each distributor, in samples (the largest request admitted); 0 with a rate: one second of the rate.")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if err := c.Limit.validate("rate_limits"); err != nil {
		return err
	}
	for t, l := range c.Tenants {
		if t == "" {
			return errors.New("rate_limits.tenants: an empty tenant name; name the tenant")
		}
		if err := l.validate(fmt.Sprintf("rate_limits.tenants[%q]", t)); err != nil {
			return err
		}
	}
	return nil
}

func (l Limit) validate(field string) error {
	if l.SamplesPerSecond < 0 || math.IsNaN(l.SamplesPerSecond) || math.IsInf(l.SamplesPerSecond, 0) {
		return fmt.Errorf("%s.samples_per_second: must be a finite number >= 0 (0: no limit)", field)
	}
	if l.Burst < 0 {
		return fmt.Errorf("%s.burst: must be >= 0 (0: one second of the rate)", field)
	}
	return nil
}

// burst is the configured burst, or one second of the rate.
func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return int(math.Ceil(l.SamplesPerSecond))
}

// limitFor returns tenant's limit.
func (c *Config) limitFor(tenant string) Limit {
	if l, ok := c.Tenants[tenant]; ok {
		return l
	}
	return c.Limit
}

// Members counts the healthy distributors sharing the limits (this one
// included). Safe for concurrent use.
type Members func() int

// ErrLimited is a request over its tenant's rate; RetryAfter says when it
// may be admitted.
type ErrLimited struct {
	Tenant     string
	Samples    int
	RetryAfter time.Duration
	Limit      float64 // this distributor's share, samples/s
	Burst      int
}

func (e *ErrLimited) Error() string {
	if e.Samples > e.Burst {
		return fmt.Sprintf("tenant %q: the request's %d samples exceed the burst of %d per distributor (rate limit %.0f samples/s on this distributor); send smaller requests",
			e.Tenant, e.Samples, e.Burst, e.Limit)
	}
	return fmt.Sprintf("tenant %q is over its ingestion rate limit (%.0f samples/s on this distributor, burst %d); retry after %s",
		e.Tenant, e.Limit, e.Burst, e.RetryAfter.Round(time.Millisecond))
}

// maxIdleBuckets bounds the per-tenant state: beyond it, buckets that have
// refilled completely (idle tenants) are forgotten.
const maxIdleBuckets = 10000

// MaxLabelledTenants bounds the tenant label of the limiter's metrics:
// the first tenants refused get their own series, tenants with an override
// in rate_limits.tenants always do, and every other tenant is counted under
// tenant="__other__". Tenant IDs come from request headers, so an
// unbounded label would let senders grow /metrics at will.
const MaxLabelledTenants = 100

// OtherTenant is the tenant label of tenants past MaxLabelledTenants.
const OtherTenant = "__other__"

// Limiter admits or refuses requests by tenant. Safe for concurrent use.
type Limiter struct {
	cfg     atomic.Pointer[Config]
	members Members
	now     func() time.Time

	mu       sync.Mutex
	buckets  map[string]*bucket
	labelled map[string]struct{} // tenants with their own label value, at most MaxLabelledTenants
	share    int                 // distributors counted at shareAt
	shareAt  time.Time           // members is asked at most once a second

	limitedSamples  *prometheus.CounterVec
	limitedRequests *prometheus.CounterVec
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter of cfg; members may be nil (one distributor).
func New(cfg Config, members Members, reg prometheus.Registerer) *Limiter {
	if members == nil {
		members = func() int { return 1 }
	}
	l := &Limiter{
		members:  members,
		now:      time.Now,
		buckets:  map[string]*bucket{},
		labelled: map[string]struct{}{},
		limitedSamples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_distributor_rate_limited_samples_total",
			Help: "Samples and histograms refused (429) by the per-tenant ingestion rate limit, by tenant.",
		}, []string{"tenant"}),
		limitedRequests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_distributor_rate_limited_requests_total",
			Help: "Remote write requests refused (429) by the per-tenant ingestion rate limit, by tenant.",
		}, []string{"tenant"}),
	}
	l.SetConfig(cfg)
	return l
}

// SetConfig replaces the limits (a reload). Buckets keep their tokens.
func (l *Limiter) SetConfig(cfg Config) { l.cfg.Store(&cfg) }

// Admit takes samples from tenant's bucket, or returns an *ErrLimited and
// takes nothing.
func (l *Limiter) Admit(tenant string, samples int) error {
	lim := l.cfg.Load().limitFor(tenant)
	if lim.SamplesPerSecond == 0 || samples == 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	rate := lim.SamplesPerSecond / float64(l.distributors(now))
	burst := lim.burst()
	b := l.buckets[tenant]
	if b == nil {
		if len(l.buckets) >= maxIdleBuckets {
			l.forgetIdle(now)
		}
		b = &bucket{tokens: float64(burst), last: now}
		l.buckets[tenant] = b
	}
	b.tokens = math.Min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if float64(samples) <= b.tokens {
		b.tokens -= float64(samples)
		return nil
	}
	lv := l.labelValue(tenant)
	l.limitedSamples.WithLabelValues(lv).Add(float64(samples))
	l.limitedRequests.WithLabelValues(lv).Inc()
	wait := time.Second
	if samples <= burst {
		wait = time.Duration((float64(samples) - b.tokens) / rate * float64(time.Second))
	}
	return &ErrLimited{Tenant: tenant, Samples: samples, RetryAfter: wait, Limit: rate, Burst: burst}
}

// distributors is the number of healthy distributors, refreshed at most
// once a second. Called with mu held.
func (l *Limiter) distributors(now time.Time) int {
	if l.share == 0 || now.Sub(l.shareAt) >= time.Second {
		l.share, l.shareAt = max(1, l.members()), now
	}
	return l.share
}

// forgetIdle drops the buckets that would be full by now. Called with mu
// held.
// labelValue is tenant's value of the metrics' tenant label. Called with
// mu held.
func (l *Limiter) labelValue(tenant string) string {
	if _, ok := l.labelled[tenant]; ok {
		return tenant
	}
	if _, ok := l.cfg.Load().Tenants[tenant]; ok {
		return tenant
	}
	if len(l.labelled) < MaxLabelledTenants {
		l.labelled[tenant] = struct{}{}
		return tenant
	}
	return OtherTenant
}

func (l *Limiter) forgetIdle(now time.Time) {
	cfg := l.cfg.Load()
	for t, b := range l.buckets {
		lim := cfg.limitFor(t)
		if lim.SamplesPerSecond == 0 || now.Sub(b.last).Seconds()*lim.SamplesPerSecond/float64(l.share) >= float64(lim.burst()) {
			delete(l.buckets, t)
		}
	}
}
