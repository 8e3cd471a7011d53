package cardinality

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/promgov/promgov/pkg/web"
)

// Source answers the analytics API: a Tracker for one ingester, or the
// distributor's fan-out that merges every ingester's answer with
// MergeMetrics and MergeTenants. Implementations must be safe for concurrent
// use; the handler calls them from concurrent requests.
type Source interface {
	// Metrics lists metrics, ordered and cut as q says.
	Metrics(ctx context.Context, q Query) ([]MetricCardinality, error)
	// Metric returns one metric, with labels, in every tenant or q.Tenant.
	Metric(ctx context.Context, name string, q Query) ([]MetricCardinality, error)
	// Tenants lists tenants, ordered and cut as q says.
	Tenants(ctx context.Context, q Query) ([]TenantCardinality, error)
}

var _ Source = (*Tracker)(nil)

// The analytics API paths (under web.APIPrefix); PathPrefix is the subtree
// NewHandler serves.
const (
	PathPrefix  = web.APIPrefix + "/cardinality/"
	PathMetrics = PathPrefix + "metrics"
	PathTenants = PathPrefix + "tenants"
)

// Envelope is the Prometheus HTTP API response envelope (web.Envelope),
// as the analytics API's clients decode it.
type Envelope[T any] = web.Envelope[T]

// NewHandler serves the analytics API from src:
//
//	GET /promgov/api/v1/cardinality/metrics?tenant=&limit=&sort=series|samples_rate|refused&sketches=&labels=
//	GET /promgov/api/v1/cardinality/metrics/{name}?tenant=&sketches=
//	GET /promgov/api/v1/cardinality/tenants?tenant=&limit=&sort=&sketches=
//
// The tenant is the tenant parameter or the header named tenantHeader (see
// web.RequestTenant; "" reads no header); without either every tenant is
// answered. limit=0 (or absent) answers DefaultQueryLimit rows, limit=-1 all
// of them. sketches=true adds encoded sketches for a merging distributor.
// labels=true adds each listed metric's labels (values and series_without,
// no label sketches). logger may be nil.
func NewHandler(src Source, tenantHeader string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{src: src, tenantHeader: tenantHeader, logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathMetrics, h.metrics)
	mux.HandleFunc("GET "+PathMetrics+"/{name}", h.metric)
	mux.HandleFunc("GET "+PathTenants, h.tenants)
	return mux
}

type handler struct {
	src          Source
	tenantHeader string
	logger       *slog.Logger
}

// ParseQuery reads a Query from r's URL parameters limit, sort, sketches
// and labels, and its tenant from the tenant parameter or the header named
// tenantHeader (web.RequestTenant). Its errors name the parameter.
func ParseQuery(r *http.Request, tenantHeader string) (Query, error) {
	v := r.URL.Query()
	tenant, err := web.RequestTenant(r, tenantHeader)
	if err != nil {
		return Query{}, err
	}
	q := Query{Tenant: tenant, Sort: v.Get("sort")}
	switch q.Sort {
	case "", SortSeries, SortSamplesRate, SortRefused:
	default:
		return q, fmt.Errorf("sort: %q is not one of series, samples_rate, refused", q.Sort)
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, fmt.Errorf("limit: %q is not an integer", s)
		}
		q.Limit = n
	}
	if s := v.Get("sketches"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, fmt.Errorf("sketches: %q is not a boolean", s)
		}
		q.Sketches = b
	}
	if s := v.Get("labels"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, fmt.Errorf("labels: %q is not a boolean", s)
		}
		q.Labels = b
	}
	return q, nil
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r, h.tenantHeader)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	rows, err := h.src.Metrics(r.Context(), q)
	h.answer(w, r, rows, err)
}

func (h *handler) metric(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r, h.tenantHeader)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	name := r.PathValue("name")
	rows, err := h.src.Metric(r.Context(), name, q)
	if err == nil && len(rows) == 0 {
		web.WriteError(w, http.StatusNotFound, "not_found", fmt.Errorf("metric %q is not tracked", name))
		return
	}
	h.answer(w, r, rows, err)
}

func (h *handler) tenants(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r, h.tenantHeader)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	rows, err := h.src.Tenants(r.Context(), q)
	h.answer(w, r, rows, err)
}

func answer[T any](w http.ResponseWriter, rows []T) {
	if rows == nil {
		rows = []T{}
	}
	web.WriteJSON(w, rows)
}

func (h *handler) answer(w http.ResponseWriter, r *http.Request, rows any, err error) {
	if err != nil {
		status, typ := http.StatusInternalServerError, "internal"
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			status, typ = http.StatusServiceUnavailable, "timeout"
		}
		h.logger.Warn("cardinality API failed", "path", r.URL.Path, "err", err)
		web.WriteError(w, status, typ, err)
		return
	}
	switch rows := rows.(type) {
	case []MetricCardinality:
		answer(w, rows)
	case []TenantCardinality:
		answer(w, rows)
	}
}
