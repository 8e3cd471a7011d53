package usage

import (
	"encoding/json"
	"net/http"
	"strconv"
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
	Status string `json:"status"`
	Data   any    `json:"data"`
}

type errEnvelope struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// NewAPI returns a handler serving, in the Prometheus API envelope:
//
//	GET /api/v1/usage/metrics?state=used|partially_used|unused&sort=series|samples_rate|query_count|name&limit=N
//	GET /api/v1/usage/sources
//	GET /api/v1/usage/suggestions?limit=N
//	GET /api/v1/usage/policy
func NewAPI(r Reader) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/usage/metrics", func(w http.ResponseWriter, req *http.Request) {
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
		writeOK(w, ms)
	})
	mux.HandleFunc("GET /api/v1/usage/sources", func(w http.ResponseWriter, _ *http.Request) {
		writeOK(w, r.Sources())
	})
	mux.HandleFunc("GET /api/v1/usage/suggestions", func(w http.ResponseWriter, req *http.Request) {
		limit, ok := parseLimit(w, req.URL.Query().Get("limit"))
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
		if limit > 0 && len(s) > limit {
			s = s[:limit]
		}
		writeOK(w, s)
	})
	mux.HandleFunc("GET /api/v1/usage/policy", func(w http.ResponseWriter, _ *http.Request) {
		writeOK(w, r.Policy().Status())
	})
	return mux
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

func writeOK(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: data})
}

func writeErr(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, errEnvelope{Status: "error", ErrorType: typ, Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
