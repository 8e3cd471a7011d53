package usage

import (
	"maps"
	"sync"
	"time"

	"github.com/promgov/promgov/pkg/usage/promqlx"
	"github.com/promgov/promgov/pkg/usage/tap"
)

// maxPatterns bounds the distinct name patterns remembered from queries.
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
	if user != "" && len(a.Users) < maxUsers {
		if a.Users == nil {
			a.Users = map[string]struct{}{}
		}
		a.Users[user] = struct{}{}
	}
	if a.Labels == nil {
		a.Labels = map[string]struct{}{}
	}
	maps.Copy(a.Labels, use.Labels)
	a.AllLabels = a.AllLabels || use.AllLabels
}

func (a *Access) merge(o *Access, maxUsers int) {
	a.Count += o.Count
	if o.Last.After(a.Last) {
		a.Last = o.Last
	}
	for u := range o.Users {
		if len(a.Users) >= maxUsers {
			break
		}
		if a.Users == nil {
			a.Users = map[string]struct{}{}
		}
		a.Users[u] = struct{}{}
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

// AccessSnapshot is a point-in-time copy of AccessStats.
type AccessSnapshot struct {
	// Metrics maps metric names to their statistics.
	Metrics map[string]*Access
	// Patterns are the pattern statistics.
	Patterns []PatternAccess
}

// AccessStats records which metrics queries read, how often, when and by
// whom. It implements tap.Recorder. Safe for concurrent use.
type AccessStats struct {
	maxMetrics, maxUsers int

	mu       sync.Mutex
	metrics  map[string]*Access
	patterns map[string]PatternAccess
	dropped  uint64
}

var _ tap.Recorder = (*AccessStats)(nil)

// NewAccessStats returns empty statistics bounded to maxMetrics names and
// maxUsers distinct users per metric.
func NewAccessStats(maxMetrics, maxUsers int) *AccessStats {
	return &AccessStats{maxMetrics: maxMetrics, maxUsers: maxUsers, metrics: map[string]*Access{}, patterns: map[string]PatternAccess{}}
}

// entryLocked returns the stats of metric name, creating them while fewer
// than maxMetrics are tracked; past the cap it counts a drop and returns nil.
// s.mu must be held.
func (s *AccessStats) entryLocked(name string) *Access {
	if a, ok := s.metrics[name]; ok {
		return a
	}
	if len(s.metrics) >= s.maxMetrics {
		s.dropped++
		return nil
	}
	a := &Access{}
	s.metrics[name] = a
	return a
}

// RecordQuery implements tap.Recorder.
func (s *AccessStats) RecordQuery(refs *promqlx.Refs, user string, at time.Time) {
	if refs == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, use := range refs.Metrics {
		if a := s.entryLocked(name); a != nil {
			a.add(use, user, at, s.maxUsers)
		}
	}
	for _, p := range refs.Patterns {
		key := p.Regex
		if p.Negative {
			key = "!" + key
		}
		pa, ok := s.patterns[key]
		if !ok {
			if len(s.patterns) >= maxPatterns {
				s.dropped++
				continue
			}
			pa = PatternAccess{Pattern: promqlx.NewPattern(p.Regex, p.Negative, promqlx.MetricUse{}), Access: &Access{}}
			s.patterns[key] = pa
		}
		pa.Access.add(&p.Use, user, at, s.maxUsers)
	}
}

// Merge adds another snapshot (e.g. from another ingester) into s.
func (s *AccessStats) Merge(o AccessSnapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, oa := range o.Metrics {
		a := s.entryLocked(name)
		if a == nil {
			continue
		}
		a.merge(oa, s.maxUsers)
	}
	for _, op := range o.Patterns {
		key := op.Pattern.Regex
		if op.Pattern.Negative {
			key = "!" + key
		}
		pa, ok := s.patterns[key]
		if !ok {
			if len(s.patterns) >= maxPatterns {
				continue
			}
			pa = PatternAccess{Pattern: promqlx.NewPattern(op.Pattern.Regex, op.Pattern.Negative, promqlx.MetricUse{}), Access: &Access{}}
			s.patterns[key] = pa
		}
		pa.Access.merge(op.Access, s.maxUsers)
	}
}

// Snapshot returns a deep copy of the statistics.
func (s *AccessStats) Snapshot() AccessSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := AccessSnapshot{Metrics: make(map[string]*Access, len(s.metrics))}
	for n, a := range s.metrics {
		out.Metrics[n] = a.clone()
	}
	for _, p := range s.patterns {
		out.Patterns = append(out.Patterns, PatternAccess{Pattern: p.Pattern, Access: p.Access.clone()})
	}
	return out
}

// Dropped returns how many names or patterns were not tracked because a bound was hit.
func (s *AccessStats) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}
