package usage

import (
	"fmt"
	"maps"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons the drop policy is blocked (label values of promgov_usage_drop_blocked).
const (
	// BlockedSourceUnhealthy: a source failed to load (or has parse errors).
	BlockedSourceUnhealthy = "source_unhealthy"
	// BlockedDataTooYoung: sources have not been healthy for a whole grace period.
	BlockedDataTooYoung = "data_younger_than_grace_period"
	// BlockedNoData: no classification has run yet.
	BlockedNoData = "no_usage_data"
)

var blockedReasons = []string{BlockedSourceUnhealthy, BlockedDataTooYoung, BlockedNoData}

// Health is the state of the usage sources as seen by the policy.
type Health struct {
	// Healthy is true when every source's last load succeeded.
	Healthy bool
	// Since is when the sources became (continuously) healthy.
	Since time.Time
}

// Verdict is the policy's answer for one metric.
type Verdict struct {
	// Drop is set in enforce mode for metrics to drop.
	Drop bool
	// WouldDrop is set in shadow and enforce mode for metrics the policy selects.
	WouldDrop bool
}

// PolicyStatus describes the policy for the API.
type PolicyStatus struct {
	// Mode is off, shadow or enforce.
	Mode string `json:"mode"`
	// GracePeriod is the configured grace period.
	GracePeriod string `json:"grace_period"`
	// Blocked is set when the fail-safe stops all dropping.
	Blocked bool `json:"blocked"`
	// Reason is why it is blocked.
	Reason string `json:"reason,omitempty"`
	// Candidates are the selected metric names (dropped in enforce mode).
	Candidates []string `json:"candidates"`
	// UpdatedAt is when the set was last recomputed.
	UpdatedAt time.Time `json:"updated_at"`
}

type dropSet struct {
	names  map[string]struct{}
	mode   string
	status PolicyStatus
}

// Policy decides which metrics are unused. Update is called by the Manager
// after each classification; Unused and Generation (the write path's
// usage.drop_unused rule, rules.UsagePolicy) and Check are lock-free and
// safe for concurrent use with Update.
type Policy struct {
	mu          sync.Mutex // guards cfg, allow, deny, unusedSince, health and updated
	cfg         DropConfig
	allow, deny []*regexp.Regexp
	unusedSince map[string]time.Time
	health      Health // at the last Update
	updated     bool   // with a classification

	current atomic.Pointer[dropSet]
	gen     atomic.Uint64 // bumped after current's names change

	blocked    *prometheus.GaugeVec
	candidates prometheus.Gauge
}

// NewPolicy returns a policy for cfg; reg may be nil.
func NewPolicy(cfg DropConfig, reg prometheus.Registerer) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeOff
	}
	p := &Policy{
		cfg:         cfg,
		unusedSince: map[string]time.Time{},
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_usage_drop_blocked",
			Help: "1 when the unused-metric drop policy is blocked, by reason (fail-safe).",
		}, []string{"reason"}),
		candidates: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_usage_drop_candidates",
			Help: "Metric names the drop policy currently selects (dropped in enforce mode, reported in shadow mode).",
		}),
	}
	p.allow, p.deny = compileAnchored(cfg.Allow), compileAnchored(cfg.Deny)
	if reg != nil {
		for _, c := range []prometheus.Collector{p.blocked, p.candidates} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register drop policy metrics: %w", err)
			}
		}
	}
	p.resetLocked()
	return p, nil
}

// compileAnchored compiles validated, fully anchored name regexes.
func compileAnchored(res []string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, 0, len(res))
	for _, r := range res {
		out = append(out, regexp.MustCompile("^(?:"+r+")$"))
	}
	return out
}

// resetLocked selects nothing until the next Update. p.mu is held (or p is
// not shared yet).
func (p *Policy) resetLocked() {
	p.setBlocked(BlockedNoData)
	p.candidates.Set(0)
	p.publish(&dropSet{mode: p.cfg.Mode, status: PolicyStatus{Mode: p.cfg.Mode, GracePeriod: p.cfg.GracePeriod.String(),
		Blocked: p.cfg.Mode != ModeOff, Reason: BlockedNoData, Candidates: []string{}}})
}

// publish makes set current, then bumps the generation if its names
// changed (after: a reader that sees the new generation sees the names).
func (p *Policy) publish(set *dropSet) {
	old := p.current.Swap(set)
	if old == nil || !maps.Equal(old.names, set.names) {
		p.gen.Add(1)
	}
}

// SetConfig replaces the mode, grace period and allow/deny lists (a config
// reload). Until the next Update nothing is selected, so a narrower allow
// list or a switch to off takes effect at once; the metrics' unused clocks
// are kept, so a longer or shorter grace period applies to the time already
// observed.
func (p *Policy) SetConfig(cfg DropConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeOff
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	p.allow, p.deny = compileAnchored(cfg.Allow), compileAnchored(cfg.Deny)
	p.resetLocked()
	return nil
}

// setBlocked sets the blocked gauge. p.mu is held.
func (p *Policy) setBlocked(reason string) {
	for _, r := range blockedReasons {
		v := 0.0
		if r == reason && p.cfg.Mode != ModeOff {
			v = 1
		}
		p.blocked.WithLabelValues(r).Set(v)
	}
}

// eligible applies allow/deny.
func (p *Policy) eligible(name string) bool { return eligible(name, p.allow, p.deny) }

// eligible reports whether name may be dropped: deny wins, then an empty
// allow list allows every name.
func eligible(name string, allow, deny []*regexp.Regexp) bool {
	for _, re := range deny {
		if re.MatchString(name) {
			return false
		}
	}
	if len(allow) == 0 {
		return true
	}
	for _, re := range allow {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// Update recomputes the drop set from a classification and source health at now.
func (p *Policy) Update(rep *Report, h Health, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health, p.updated = h, rep != nil
	status := PolicyStatus{Mode: p.cfg.Mode, GracePeriod: p.cfg.GracePeriod.String(), UpdatedAt: now, Candidates: []string{}}
	set := &dropSet{names: map[string]struct{}{}, mode: p.cfg.Mode}
	reason := ""
	switch {
	case rep == nil:
		reason = BlockedNoData
	case !h.Healthy:
		reason = BlockedSourceUnhealthy
		// Usage seen while a source was down proves nothing: restart the clocks.
		clear(p.unusedSince)
	case now.Sub(h.Since) < p.cfg.GracePeriod:
		reason = BlockedDataTooYoung
	}
	if rep != nil && h.Healthy {
		seen := make(map[string]struct{}, len(rep.Metrics))
		for _, m := range rep.Metrics {
			seen[m.Name] = struct{}{}
			if m.State != StateUnused {
				delete(p.unusedSince, m.Name)
				continue
			}
			since, ok := p.unusedSince[m.Name]
			if !ok || since.Before(h.Since) {
				since = now
				p.unusedSince[m.Name] = since
			}
			if reason == "" && now.Sub(since) >= p.cfg.GracePeriod && p.eligible(m.Name) {
				set.names[m.Name] = struct{}{}
			}
		}
		for n := range p.unusedSince {
			if _, ok := seen[n]; !ok {
				delete(p.unusedSince, n)
			}
		}
	}
	// With mode off the selection is still made, for rules of kind
	// unused; only the policy's own verdicts (Check) and status are off.
	candidates := len(set.names)
	if p.cfg.Mode == ModeOff {
		reason, candidates = "", 0
	} else {
		for n := range set.names {
			status.Candidates = append(status.Candidates, n)
		}
	}
	status.Blocked, status.Reason = reason != "", reason
	sort.Strings(status.Candidates)
	set.status = status
	p.setBlocked(reason)
	p.candidates.Set(float64(candidates))
	p.publish(set)
}

// WouldDrop returns what cfg would select now, from this policy's
// observations (how long each metric has been unused, with every source
// healthy) as of its last Update: the metric names, and why it would
// select none when it is blocked (Blocked* reasons). It changes nothing;
// the impact preview uses it for a candidate's usage.drop_unused.
func (p *Policy) WouldDrop(cfg DropConfig, now time.Time) (names map[string]bool, blocked string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	names = map[string]bool{}
	if cfg.Mode == "" || cfg.Mode == ModeOff {
		return names, "", nil
	}
	allow, deny := compileAnchored(cfg.Allow), compileAnchored(cfg.Deny)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.updated:
		return names, BlockedNoData, nil
	case !p.health.Healthy:
		return names, BlockedSourceUnhealthy, nil
	case now.Sub(p.health.Since) < cfg.GracePeriod:
		return names, BlockedDataTooYoung, nil
	}
	for name, since := range p.unusedSince {
		if now.Sub(since) >= cfg.GracePeriod && eligible(name, allow, deny) {
			names[name] = true
		}
	}
	return names, "", nil
}

// Check returns the policy's verdict for a metric name under its own mode
// (the status and the impact preview's view; the write path runs the
// usage.drop_unused rule, which asks Unused). Cheap and lock-free.
func (p *Policy) Check(metric string) Verdict {
	s := p.current.Load()
	if _, ok := s.names[metric]; !ok || s.mode == ModeOff {
		return Verdict{}
	}
	if s.mode == ModeEnforce {
		return Verdict{Drop: true, WouldDrop: true}
	}
	return Verdict{WouldDrop: true}
}

// Unused reports whether metric is selected as unused now (whatever the
// mode: rules of kind unused ask it; rules.UsagePolicy). Cheap and
// lock-free; it counts nothing (the rules engine counts its verdicts).
func (p *Policy) Unused(metric string) bool {
	_, ok := p.current.Load().names[metric]
	return ok
}

// Generation changes whenever the set Unused answers from changes
// (rules.UsagePolicy).
func (p *Policy) Generation() uint64 { return p.gen.Load() }

// Status returns the current policy status.
func (p *Policy) Status() PolicyStatus {
	return p.current.Load().status
}
