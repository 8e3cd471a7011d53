package usage

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/promgov/promgov/pkg/web"
)

// Reader is what the HTTP API reads. Implementations must be safe for
// concurrent use (handlers run on request goroutines). *Manager implements it;
// the cluster fan-out can provide a merging implementation.
type Reader interface {
	// Report returns the latest classification, nil when none yet.
	Report() *Report
	// Sources returns the source statuses.
	Sources() []SourceStatus
	// Policy returns the drop policy.
	Policy() *Policy
}

var _ Reader = (*Manager)(nil)

// DefaultSuggestionLimit is how many suggestions GET .../usage/suggestions
// answers without a limit parameter.
const DefaultSuggestionLimit = 50

// The usage API paths (under web.APIPrefix).
const (
	PathPrefix      = web.APIPrefix + "/usage/"
	PathMetrics     = PathPrefix + "metrics"
	PathSources     = PathPrefix + "sources"
	PathSuggestions = PathPrefix + "suggestions"
	PathPolicy      = PathPrefix + "policy"
)

// NewAPI returns a handler serving, in the Prometheus API envelope:
//
//	GET /promgov/api/v1/usage/metrics?state=used|partially_used|unused&sort=series|samples_rate|query_count|name&limit=N
//	GET /promgov/api/v1/usage/sources
//	GET /promgov/api/v1/usage/suggestions?limit=N   (default DefaultSuggestionLimit, -1 for all)
//	GET /promgov/api/v1/usage/policy
//
// Classification is cluster-wide, over every tenant: a request that names
// a tenant (the tenant parameter or the header named tenantHeader, see
// web.RequestTenant) is answered for every tenant with a warning saying so.
func NewAPI(r Reader, tenantHeader string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathMetrics, func(w http.ResponseWriter, req *http.Request) {
		warnings, ok := tenantWarnings(w, req, tenantHeader)
		if !ok {
			return
		}
		q := req.URL.Query()
		state := State(q.Get("state"))
		switch state {
		case "", StateUsed, StatePartiallyUsed, StateUnused:
		default:
			web.WriteError(w, http.StatusBadRequest, "bad_data", errors.New("state must be used, partially_used or unused"))
			return
		}
		switch q.Get("sort") {
		case "", "name", "series", "samples_rate", "query_count":
		default:
			web.WriteError(w, http.StatusBadRequest, "bad_data", errors.New("sort must be name, series, samples_rate or query_count"))
			return
		}
		limit, ok := parseLimit(w, q.Get("limit"))
		if !ok {
			return
		}
		rep := r.Report()
		if rep == nil {
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", errors.New("usage not classified yet"))
			return
		}
		ms := rep.Filter(state, q.Get("sort"))
		if limit > 0 && len(ms) > limit {
			ms = ms[:limit]
		}
		web.WriteJSON(w, ms, warnings...)
	})
	mux.HandleFunc("GET "+PathSources, func(w http.ResponseWriter, _ *http.Request) {
		web.WriteJSON(w, r.Sources())
	})
	mux.HandleFunc("GET "+PathSuggestions, func(w http.ResponseWriter, req *http.Request) {
		warnings, ok := tenantWarnings(w, req, tenantHeader)
		if !ok {
			return
		}
		limit, ok := parseSuggestionLimit(w, req.URL.Query().Get("limit"))
		if !ok {
			return
		}
		rep := r.Report()
		if rep == nil {
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", errors.New("usage not classified yet"))
			return
		}
		s := Suggest(rep)
		if s == nil {
			s = []Suggestion{}
		}
		if limit >= 0 && len(s) > limit {
			warnings = append(warnings, fmt.Sprintf("showing the %d suggestions that save the most series of %d; limit=-1 answers all", limit, len(s)))
			s = s[:limit]
		}
		web.WriteJSON(w, s, warnings...)
	})
	mux.HandleFunc("GET "+PathPolicy, func(w http.ResponseWriter, _ *http.Request) {
		web.WriteJSON(w, r.Policy().Status())
	})
	return mux
}

// tenantWarnings resolves the request's tenant; a named tenant becomes a
// warning, since classification is not per tenant. It answers 400 and
// reports false when the tenant parameter and header disagree.
func tenantWarnings(w http.ResponseWriter, req *http.Request, tenantHeader string) ([]string, bool) {
	tenant, err := web.RequestTenant(req, tenantHeader)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
		return nil, false
	}
	if tenant == "" {
		return nil, true
	}
	return []string{fmt.Sprintf("usage classification is cluster-wide: this answer covers every tenant, not only tenant %q", tenant)}, true
}

// parseSuggestionLimit reads the suggestions' limit: absent or 0 is
// DefaultSuggestionLimit, -1 is all (answered as -1).
func parseSuggestionLimit(w http.ResponseWriter, s string) (int, bool) {
	if s == "" || s == "0" {
		return DefaultSuggestionLimit, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 {
		web.WriteError(w, http.StatusBadRequest, "bad_data", fmt.Errorf("limit: %q must be a positive integer, 0 for the default (%d) or -1 for all", s, DefaultSuggestionLimit))
		return 0, false
	}
	return n, true
}

func parseLimit(w http.ResponseWriter, s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		web.WriteError(w, http.StatusBadRequest, "bad_data", errors.New("limit must be a non-negative integer"))
		return 0, false
	}
	return n, true
}
