// Package accesspb converts query statistics (usage.AccessSnapshot) to and
// from the cluster service's messages: a distributor's RecordAccess batch,
// an ingester's GetAccess answer, and the statistics that travel with a
// metric in a ring-change handoff (ExportMetricResponse.access).
package accesspb

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/promqlx"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Stats returns a's statistics as a message.
func Stats(a *usage.Access) *ingesterv1.AccessStats {
	m := &ingesterv1.AccessStats{
		Count:     a.Count,
		Users:     slices.Sorted(maps.Keys(a.Users)),
		Labels:    slices.Sorted(maps.Keys(a.Labels)),
		AllLabels: a.AllLabels,
	}
	if !a.Last.IsZero() {
		m.LastUnixMs = a.Last.UnixMilli()
	}
	return m
}

// FromStats returns the statistics of a message.
func FromStats(m *ingesterv1.AccessStats) *usage.Access {
	a := &usage.Access{Count: m.GetCount(), AllLabels: m.GetAllLabels(), Labels: make(map[string]struct{}, len(m.GetLabels()))}
	if ms := m.GetLastUnixMs(); ms != 0 {
		a.Last = time.UnixMilli(ms).UTC()
	}
	for _, l := range m.GetLabels() {
		a.Labels[l] = struct{}{}
	}
	if len(m.GetUsers()) > 0 {
		a.Users = make(map[string]struct{}, len(m.GetUsers()))
		for _, u := range m.GetUsers() {
			a.Users[u] = struct{}{}
		}
	}
	return a
}

// AddMetric appends one metric's statistics to req.
func AddMetric(req *ingesterv1.RecordAccessRequest, metric string, a *usage.Access) {
	req.Metrics = append(req.Metrics, &ingesterv1.MetricAccess{Metric: metric, Stats: Stats(a)})
}

// RequestPattern appends one pattern's statistics to req.
func AddPattern(req *ingesterv1.RecordAccessRequest, p usage.PatternAccess) {
	req.Patterns = append(req.Patterns, &ingesterv1.PatternAccess{
		Regex: p.Pattern.Regex, Negative: p.Pattern.Negative, Stats: Stats(p.Access),
	})
}

// Response returns s as a GetAccess answer, sorted like
// usage.AccessSnapshot.Data.
func Response(s usage.AccessSnapshot) *ingesterv1.GetAccessResponse {
	resp := &ingesterv1.GetAccessResponse{}
	for _, name := range slices.Sorted(maps.Keys(s.Metrics)) {
		resp.Metrics = append(resp.Metrics, &ingesterv1.MetricAccess{Metric: name, Stats: Stats(s.Metrics[name])})
	}
	for _, p := range s.Patterns {
		resp.Patterns = append(resp.Patterns, &ingesterv1.PatternAccess{
			Regex: p.Pattern.Regex, Negative: p.Pattern.Negative, Stats: Stats(p.Access),
		})
	}
	return resp
}

// FromResponse validates a GetAccess answer and returns its statistics as
// a snapshot.
func FromResponse(resp *ingesterv1.GetAccessResponse) (usage.AccessSnapshot, error) {
	return fromParts(resp.GetMetrics(), resp.GetPatterns())
}

// FromRequest validates req and returns its statistics as a snapshot.
func FromRequest(req *ingesterv1.RecordAccessRequest) (usage.AccessSnapshot, error) {
	return fromParts(req.GetMetrics(), req.GetPatterns())
}

func fromParts(metrics []*ingesterv1.MetricAccess, patterns []*ingesterv1.PatternAccess) (usage.AccessSnapshot, error) {
	s := usage.AccessSnapshot{Metrics: make(map[string]*usage.Access, len(metrics))}
	for i, m := range metrics {
		if m.GetMetric() == "" {
			return usage.AccessSnapshot{}, fmt.Errorf("metrics[%d]: empty metric name", i)
		}
		a := FromStats(m.GetStats())
		if cur, ok := s.Metrics[m.GetMetric()]; ok {
			// A well-formed batch names each metric once; add, don't lose.
			// The receiver's MergeTenant applies the user bound.
			cur.Merge(a, math.MaxInt)
			continue
		}
		s.Metrics[m.GetMetric()] = a
	}
	for i, p := range patterns {
		if p.GetRegex() == "" {
			return usage.AccessSnapshot{}, fmt.Errorf("patterns[%d]: empty regex", i)
		}
		s.Patterns = append(s.Patterns, usage.PatternAccess{
			Pattern: promqlx.NewPattern(p.GetRegex(), p.GetNegative(), promqlx.MetricUse{}),
			Access:  FromStats(p.GetStats()),
		})
	}
	return s, nil
}
