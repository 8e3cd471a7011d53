package usage

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/promgov/promgov/pkg/usage/promqlx"
	"github.com/promgov/promgov/pkg/web"
)

// PathAccess is the ingester endpoint answering the query statistics of the
// metrics it owns in JSON (AccessHandler), for operators; distributors ask
// the cluster service's GetAccess instead.
const PathAccess = PathPrefix + "access"

// AccessRecord is one metric's or name pattern's statistics in JSON form:
// an item of the ingester's /promgov/api/v1/usage/access answer and of the
// statistics snapshot file. Exactly one of Name and Regex is set.
type AccessRecord struct {
	// Name is the metric name (metric records).
	Name string `json:"name,omitempty"`
	// Regex and Negative are the name matcher (pattern records).
	Regex    string `json:"regex,omitempty"`
	Negative bool   `json:"negative,omitempty"`
	// Count is the number of queries that read it.
	Count uint64 `json:"count"`
	// Last is when it was last queried.
	Last time.Time `json:"last"`
	// Users are the distinct querying users (bounded).
	Users []string `json:"users,omitempty"`
	// Labels are the label names queries referenced.
	Labels []string `json:"labels,omitempty"`
	// AllLabels is set when a query returned series with all their labels.
	AllLabels bool `json:"all_labels,omitempty"`
}

// AccessData is an AccessSnapshot in JSON form, sorted for stable output.
type AccessData struct {
	Metrics  []AccessRecord `json:"metrics"`
	Patterns []AccessRecord `json:"patterns"`
}

// record returns a in JSON form.
func (a *Access) record() AccessRecord {
	return AccessRecord{
		Count: a.Count, Last: a.Last, AllLabels: a.AllLabels,
		Users: slices.Sorted(maps.Keys(a.Users)), Labels: slices.Sorted(maps.Keys(a.Labels)),
	}
}

// access returns r's statistics.
func (r AccessRecord) access() *Access {
	a := &Access{Count: r.Count, Last: r.Last, AllLabels: r.AllLabels, Labels: make(map[string]struct{}, len(r.Labels))}
	for _, l := range r.Labels {
		a.Labels[l] = struct{}{}
	}
	if len(r.Users) > 0 {
		a.Users = make(map[string]struct{}, len(r.Users))
		for _, u := range r.Users {
			a.Users[u] = struct{}{}
		}
	}
	return a
}

// Data returns s in JSON form.
func (s AccessSnapshot) Data() AccessData {
	d := AccessData{Metrics: make([]AccessRecord, 0, len(s.Metrics)), Patterns: make([]AccessRecord, 0, len(s.Patterns))}
	for n, a := range s.Metrics {
		r := a.record()
		r.Name = n
		d.Metrics = append(d.Metrics, r)
	}
	for _, p := range s.Patterns {
		r := p.Access.record()
		r.Regex, r.Negative = p.Pattern.Regex, p.Pattern.Negative
		d.Patterns = append(d.Patterns, r)
	}
	slices.SortFunc(d.Metrics, func(a, b AccessRecord) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Patterns, func(a, b AccessRecord) int {
		return cmp.Compare(PatternKey(a.Regex, a.Negative), PatternKey(b.Regex, b.Negative))
	})
	return d
}

// Snapshot validates d and returns it as a snapshot. Records of one name or
// pattern that appear twice are merged.
func (d AccessData) Snapshot() (AccessSnapshot, error) {
	s := AccessSnapshot{Metrics: make(map[string]*Access, len(d.Metrics))}
	for i, r := range d.Metrics {
		if r.Name == "" || r.Regex != "" {
			return AccessSnapshot{}, fmt.Errorf("metrics[%d]: a metric record needs a name and no regex", i)
		}
		if cur, ok := s.Metrics[r.Name]; ok {
			cur.Merge(r.access(), math.MaxInt)
			continue
		}
		s.Metrics[r.Name] = r.access()
	}
	seen := map[string]int{}
	for i, r := range d.Patterns {
		if r.Regex == "" || r.Name != "" {
			return AccessSnapshot{}, fmt.Errorf("patterns[%d]: a pattern record needs a regex and no name", i)
		}
		key := PatternKey(r.Regex, r.Negative)
		if j, ok := seen[key]; ok {
			cur := s.Patterns[j].Access
			cur.Merge(r.access(), math.MaxInt)
			continue
		}
		seen[key] = len(s.Patterns)
		s.Patterns = append(s.Patterns, PatternAccess{
			Pattern: promqlx.NewPattern(r.Regex, r.Negative, promqlx.MetricUse{}),
			Access:  r.access(),
		})
	}
	return s, nil
}

// AccessHandler serves GET /promgov/api/v1/usage/access on an ingester: the
// query statistics of the metrics it owns, merged over tenants, or one
// tenant's, named by the tenant parameter or the header named tenantHeader
// (web.RequestTenant).
func AccessHandler(s *AccessStats, tenantHeader string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			web.WriteError(w, http.StatusMethodNotAllowed, "bad_data", errors.New("use GET"))
			return
		}
		t, err := web.RequestTenant(r, tenantHeader)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		if t != "" {
			snap := s.TenantSnapshots()[t]
			web.WriteJSON(w, snap.Data())
			return
		}
		web.WriteJSON(w, s.Snapshot().Data())
	})
}
