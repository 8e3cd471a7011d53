package usage

import (
	"encoding/json"
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

type envelope struct {
	Status   string   `json:"status"`
	Data     any      `json:"data"`
	Warnings []string `json:"warnings,omitempty"`
}

type errEnvelope struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

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
			writeErr(w, http.StatusBadRequest, "bad_data", "state must be used, partially_used or unused")
			return
		}
		switch q.Get("sort") {
		case "", "name", "series", "samples_rate", "query_count":
		default:
			writeErr(w, http.StatusBadRequest, "bad_data", "sort must be name, series, samples_rate or query_count")
			return
		}
		limit, ok := parseLimit(w, q.Get("limit"))
		if !ok {
			return
		}
		rep := r.Report()
		if rep == nil {
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "usage not classified yet")
			return
		}
		ms := rep.Filter(state, q.Get("sort"))
		if limit > 0 && len(ms) > limit {
			ms = ms[:limit]
		}
		writeOK(w, ms, warnings...)
	})
	mux.HandleFunc("GET "+PathSources, func(w http.ResponseWriter, _ *http.Request) {
		writeOK(w, r.Sources())
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
			writeErr(w, http.StatusServiceUnavailable, "unavailable", "usage not classified yet")
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
		writeOK(w, s, warnings...)
	})
	mux.HandleFunc("GET "+PathPolicy, func(w http.ResponseWriter, _ *http.Request) {
		writeOK(w, r.Policy().Status())
	})
	return mux
}

// tenantWarnings resolves the request's tenant; a named tenant becomes a
// warning, since classification is not per tenant. It answers 400 and
// reports false when the tenant parameter and header disagree.
func tenantWarnings(w http.ResponseWriter, req *http.Request, tenantHeader string) ([]string, bool) {
	tenant, err := web.RequestTenant(req, tenantHeader)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_data", err.Error())
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
		writeErr(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("limit: %q must be a positive integer, 0 for the default (%d) or -1 for all", s, DefaultSuggestionLimit))
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
		writeErr(w, http.StatusBadRequest, "bad_data", "limit must be a non-negative integer")
		return 0, false
	}
	return n, true
}

func writeOK(w http.ResponseWriter, data any, warnings ...string) {
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: data, Warnings: warnings})
}

func writeErr(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, errEnvelope{Status: "error", ErrorType: typ, Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
