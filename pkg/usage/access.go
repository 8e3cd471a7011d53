package usage

import (
	"maps"
	"math"
	"sync"
	"time"

	"github.com/promgov/promgov/pkg/usage/promqlx"
	"github.com/promgov/promgov/pkg/usage/tap"
)

// maxPatterns bounds the distinct name patterns remembered per tenant.
const maxPatterns = 10000

// Access is the query statistics of one metric (or name pattern).
type Access struct {
	// Count is the number of queries that read the metric.
	Count uint64 `json:"count"`
	// Last is when it was last queried.
	Last time.Time `json:"last"`
	// Users are the distinct users seen (bounded).
	Users map[string]struct{} `json:"-"`
	// Labels are the label names queries referenced.
	Labels map[string]struct{} `json:"-"`
	// AllLabels is set when a query returned the series with all labels.
	AllLabels bool `json:"all_labels"`
}

func (a *Access) add(use *promqlx.MetricUse, user string, at time.Time, maxUsers int) {
	a.Count++
	if at.After(a.Last) {
		a.Last = at
	}
	if user != "" {
		a.addUser(user, maxUsers)
	}
	if a.Labels == nil {
		a.Labels = map[string]struct{}{}
	}
	maps.Copy(a.Labels, use.Labels)
	a.AllLabels = a.AllLabels || use.AllLabels
}

func (a *Access) addUser(u string, maxUsers int) {
	if _, ok := a.Users[u]; ok || len(a.Users) >= maxUsers {
		return
	}
	if a.Users == nil {
		a.Users = map[string]struct{}{}
	}
	a.Users[u] = struct{}{}
}

// Merge adds o into a: counts add up, the later last-queried time wins,
// users (at most maxUsers) and labels are united. Use math.MaxInt for no
// user bound.
func (a *Access) Merge(o *Access, maxUsers int) {
	a.Count += o.Count
	if o.Last.After(a.Last) {
		a.Last = o.Last
	}
	for u := range o.Users {
		a.addUser(u, maxUsers)
	}
	if a.Labels == nil {
		a.Labels = map[string]struct{}{}
	}
	maps.Copy(a.Labels, o.Labels)
	a.AllLabels = a.AllLabels || o.AllLabels
}

func (a *Access) clone() *Access {
	c := *a
	c.Users = maps.Clone(a.Users)
	c.Labels = maps.Clone(a.Labels)
	return &c
}

// PatternAccess is the statistics of queries that selected metrics by a
// name pattern ({__name__=~"..."}), resolved against traffic at classification.
type PatternAccess struct {
	// Pattern is the name matcher.
	Pattern *promqlx.Pattern
	// Access is its statistics.
	Access *Access
}

// PatternKey is the identity of a name pattern: its regex, prefixed with
// "!" when negative. Distributors place a pattern's statistics on the ring
// under it (names cannot start with "!", so it never collides with a metric).
func PatternKey(regex string, negative bool) string {
	if negative {
		return "!" + regex
	}
	return "=" + regex
}

// AccessSnapshot is a point-in-time copy of AccessStats.
type AccessSnapshot struct {
	// Metrics maps metric names to their statistics.
	Metrics map[string]*Access
	// Patterns are the pattern statistics.
	Patterns []PatternAccess
}

// Empty reports whether the snapshot holds nothing.
func (s AccessSnapshot) Empty() bool { return len(s.Metrics) == 0 && len(s.Patterns) == 0 }

// tenantAccess is one tenant's statistics.
type tenantAccess struct {
	metrics  map[string]*Access
	patterns map[string]PatternAccess
}

func newTenantAccess() *tenantAccess {
	return &tenantAccess{metrics: map[string]*Access{}, patterns: map[string]PatternAccess{}}
}

// AccessStats records which metrics queries read, how often, when and by
// whom, per tenant. On a distributor it is the outbox the query tap and query
// logs fill and the shipper drains to the owning ingesters; on an ingester it
// is the store of the metrics it owns. It implements tap.Recorder. Safe for
// concurrent use.
type AccessStats struct {
	maxMetrics, maxUsers int

	mu      sync.Mutex
	tenants map[string]*tenantAccess
	entries int // metric entries over all tenants, bounded by maxMetrics
	dropped uint64
}

var _ tap.Recorder = (*AccessStats)(nil)

// NewAccessStats returns empty statistics bounded to maxMetrics names (over
// all tenants) and maxUsers distinct users per metric.
func NewAccessStats(maxMetrics, maxUsers int) *AccessStats {
	return &AccessStats{maxMetrics: maxMetrics, maxUsers: maxUsers, tenants: map[string]*tenantAccess{}}
}

func (s *AccessStats) tenantLocked(tenant string) *tenantAccess {
	ta := s.tenants[tenant]
	if ta == nil {
		ta = newTenantAccess()
		s.tenants[tenant] = ta
	}
	return ta
}

// entryLocked returns the stats of metric name, creating them while fewer
// than maxMetrics are tracked; past the cap it counts a drop and returns nil.
// s.mu must be held.
func (s *AccessStats) entryLocked(ta *tenantAccess, name string) *Access {
	if a, ok := ta.metrics[name]; ok {
		return a
	}
	if s.entries >= s.maxMetrics {
		s.dropped++
		return nil
	}
	a := &Access{}
	ta.metrics[name] = a
	s.entries++
	return a
}

// patternLocked returns the stats of a pattern, creating them while the
// tenant has fewer than maxPatterns. s.mu must be held.
func (s *AccessStats) patternLocked(ta *tenantAccess, regex string, negative bool) *Access {
	key := PatternKey(regex, negative)
	pa, ok := ta.patterns[key]
	if !ok {
		if len(ta.patterns) >= maxPatterns {
			s.dropped++
			return nil
		}
		pa = PatternAccess{Pattern: promqlx.NewPattern(regex, negative, promqlx.MetricUse{}), Access: &Access{}}
		ta.patterns[key] = pa
	}
	return pa.Access
}

// RecordQuery implements tap.Recorder.
func (s *AccessStats) RecordQuery(tenant string, refs *promqlx.Refs, user string, at time.Time) {
	if refs == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ta := s.tenantLocked(tenant)
	for name, use := range refs.Metrics {
		if a := s.entryLocked(ta, name); a != nil {
			a.add(use, user, at, s.maxUsers)
		}
	}
	for _, p := range refs.Patterns {
		if a := s.patternLocked(ta, p.Regex, p.Negative); a != nil {
			a.add(&p.Use, user, at, s.maxUsers)
		}
	}
}

// MergeTenant adds a snapshot into tenant's statistics and returns how many
// of its entries were not kept because a bound was hit.
func (s *AccessStats) MergeTenant(tenant string, o AccessSnapshot) (dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.dropped
	ta := s.tenantLocked(tenant)
	for name, oa := range o.Metrics {
		if a := s.entryLocked(ta, name); a != nil {
			a.Merge(oa, s.maxUsers)
		}
	}
	for _, op := range o.Patterns {
		if a := s.patternLocked(ta, op.Pattern.Regex, op.Pattern.Negative); a != nil {
			a.Merge(op.Access, s.maxUsers)
		}
	}
	return int(s.dropped - before)
}

// Merge adds a tenant-less snapshot (e.g. one ingester's answer) into s.
func (s *AccessStats) Merge(o AccessSnapshot) { s.MergeTenant("", o) }

// Snapshot returns a deep copy of the statistics of every tenant, merged:
// classification is not per tenant.
func (s *AccessStats) Snapshot() AccessSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := AccessSnapshot{Metrics: map[string]*Access{}}
	pats := map[string]PatternAccess{}
	for _, ta := range s.tenants {
		for n, a := range ta.metrics {
			if cur, ok := out.Metrics[n]; ok {
				cur.Merge(a, s.maxUsers)
			} else {
				out.Metrics[n] = a.clone()
			}
		}
		for k, p := range ta.patterns {
			if cur, ok := pats[k]; ok {
				cur.Access.Merge(p.Access, s.maxUsers)
			} else {
				pats[k] = PatternAccess{Pattern: p.Pattern, Access: p.Access.clone()}
			}
		}
	}
	for _, p := range pats {
		out.Patterns = append(out.Patterns, p)
	}
	return out
}

// TenantSnapshots returns a deep copy of every tenant's statistics.
func (s *AccessStats) TenantSnapshots() map[string]AccessSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]AccessSnapshot, len(s.tenants))
	for t, ta := range s.tenants {
		snap := AccessSnapshot{Metrics: make(map[string]*Access, len(ta.metrics))}
		for n, a := range ta.metrics {
			snap.Metrics[n] = a.clone()
		}
		for _, p := range ta.patterns {
			snap.Patterns = append(snap.Patterns, PatternAccess{Pattern: p.Pattern, Access: p.Access.clone()})
		}
		out[t] = snap
	}
	return out
}

// Drain returns every tenant's statistics and empties s: the distributor's
// shipper takes what the tap recorded since its last round.
func (s *AccessStats) Drain() map[string]AccessSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]AccessSnapshot, len(s.tenants))
	for t, ta := range s.tenants {
		snap := AccessSnapshot{Metrics: ta.metrics}
		for _, p := range ta.patterns {
			snap.Patterns = append(snap.Patterns, p)
		}
		if !snap.Empty() {
			out[t] = snap
		}
	}
	s.tenants = map[string]*tenantAccess{}
	s.entries = 0
	return out
}

// MergeSnapshots returns the union of snapshots (e.g. every ingester's
// answer), with no bound: the inputs are bounded already. The inputs are
// not modified.
func MergeSnapshots(snaps ...AccessSnapshot) AccessSnapshot {
	merged := NewAccessStats(math.MaxInt, math.MaxInt)
	for _, s := range snaps {
		merged.Merge(s)
	}
	// Drain hands over the merged maps without another deep copy.
	out := merged.Drain()[""]
	if out.Metrics == nil {
		out.Metrics = map[string]*Access{}
	}
	return out
}

// Metric returns a copy of one tenant's statistics of metric, and
// optionally forgets them (a ring-change handoff moves them to the new owner).
func (s *AccessStats) Metric(tenant, metric string, forget bool) (*Access, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ta := s.tenants[tenant]
	if ta == nil {
		return nil, false
	}
	a, ok := ta.metrics[metric]
	if !ok {
		return nil, false
	}
	if forget {
		delete(ta.metrics, metric)
		s.entries--
		return a, true
	}
	return a.clone(), true
}

// Len returns the number of metric entries held over all tenants.
func (s *AccessStats) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries
}

// Dropped returns how many names or patterns were not tracked because a bound was hit.
func (s *AccessStats) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}
