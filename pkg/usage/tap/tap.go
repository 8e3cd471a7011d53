// Package tap is the query tap: an http.Handler that reverse-proxies the
// Prometheus read API (Routes: queries, metadata, labels, series,
// exemplars, rules, alerts, targets, status, ...) to a backend unchanged,
// so that a Grafana Prometheus data source can point at it, and records
// which metrics and labels the query, query_range, series, labels and
// label/<name>/values requests read and who asked. The write and admin
// endpoints are not proxied.
package tap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// maxFormBody bounds the POST form body read to find the query.
const maxFormBody = 8 << 20

// Recorder receives what each proxied request reads. Implementations must be
// safe for concurrent use: it is called from request goroutines.
type Recorder interface {
	// RecordQuery records one request of tenant reading refs, by user (may
	// be empty), at time at.
	RecordQuery(tenant string, refs *promqlx.Refs, user string, at time.Time)
}

// Options are the tap's dependencies and settings.
type Options struct {
	// Backend is the Prometheus-compatible query backend.
	Backend *url.URL
	// UserHeader names the request header that carries the user (e.g. X-Grafana-User).
	UserHeader string
	// TenantHeader names the request header that carries the tenant
	// (X-Scope-OrgID); DefaultTenant is used when it is absent or empty.
	TenantHeader, DefaultTenant string
	// Recorder receives the usage; required.
	Recorder Recorder
	// Logger logs proxy errors; slog.Default when nil.
	Logger *slog.Logger
	// Registerer registers the tap's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Transport is the proxy transport; http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// recordKind says what a route's requests read.
type recordKind int

const (
	recordNone    recordKind = iota // proxied only
	recordQuery                     // the query parameter (PromQL)
	recordMatches                   // the match[] selectors
)

// route is one proxied read API path.
type route struct {
	// pattern is an http.ServeMux path pattern without a method; one
	// ending in / is a subtree.
	pattern string
	// endpoint labels the tap's metrics (a bounded set).
	endpoint string
	record   recordKind
}

// routes is the Prometheus read API (web/api/v1 of Prometheus 3.x); the
// methods it serves there (GET, HEAD, POST, and OPTIONS for CORS
// preflights) are passed on. Subtrees keep backends' additions under status/ and search/
// reachable. Remote write, OTLP and the admin API are not read endpoints
// and are not proxied.
var routes = []route{
	{"/api/v1/query", "query", recordQuery},
	{"/api/v1/query_range", "query_range", recordQuery},
	{"/api/v1/query_exemplars", "query_exemplars", recordNone},
	{"/api/v1/query_cost", "query_cost", recordNone},
	{"/api/v1/query_range_cost", "query_range_cost", recordNone},
	{"/api/v1/format_query", "format_query", recordNone},
	{"/api/v1/parse_query", "parse_query", recordNone},
	{"/api/v1/series", "series", recordMatches},
	{"/api/v1/labels", "labels", recordMatches},
	{"/api/v1/label/{name}/values", "label_values", recordMatches},
	{"/api/v1/metadata", "metadata", recordNone},
	{"/api/v1/read", "read", recordNone},
	{"/api/v1/rules", "rules", recordNone},
	{"/api/v1/alerts", "alerts", recordNone},
	{"/api/v1/alertmanagers", "alertmanagers", recordNone},
	{"/api/v1/targets", "targets", recordNone},
	{"/api/v1/targets/metadata", "targets_metadata", recordNone},
	{"/api/v1/targets/relabel_steps", "targets_relabel_steps", recordNone},
	{"/api/v1/scrape_pools", "scrape_pools", recordNone},
	{"/api/v1/scrape_pools/config", "scrape_pools_config", recordNone},
	{"/api/v1/features", "features", recordNone},
	{"/api/v1/notifications", "notifications", recordNone},
	{"/api/v1/notifications/live", "notifications_live", recordNone},
	{"/api/v1/openapi.yaml", "openapi", recordNone},
	{"/api/v1/status/", "status", recordNone},
	{"/api/v1/search/", "search", recordNone},
}

// Routes returns the http.ServeMux path patterns (without a method) the
// tap serves, for mounting it. A caller may mount a more specific pattern
// beside them (e.g. "GET /api/v1/status/ring") to keep a path for itself.
func Routes() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.pattern
	}
	return out
}

// Handler proxies and records. Safe for concurrent use.
type Handler struct {
	cfg      Options
	mux      *http.ServeMux
	proxy    *httputil.ReverseProxy
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
}

var _ http.Handler = (*Handler)(nil)

// New returns a tap Handler.
func New(cfg Options) (*Handler, error) {
	if cfg.Backend == nil || cfg.Backend.Scheme == "" || cfg.Backend.Host == "" {
		return nil, errors.New("query tap: backend URL must be absolute (set query.backend-url)")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("query tap: recorder is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{
		cfg: cfg,
		mux: http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_usage_tap_requests_total",
			Help: "Read API requests proxied by the query tap, by endpoint.",
		}, []string{"endpoint"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_usage_tap_unparsed_requests_total",
			Help: "Proxied requests whose query could not be parsed for usage, by endpoint.",
		}, []string{"endpoint"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{h.requests, h.failures} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register tap metrics: %w", err)
			}
		}
	}
	backend := cfg.Backend
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(backend)
			r.Out.Host = backend.Host
		},
		Transport: cfg.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cfg.Logger.Warn("query tap: backend request failed", "path", r.URL.Path, "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	for _, rt := range routes {
		h.mux.Handle(rt.pattern, h.serve(rt))
	}
	return h, nil
}

// ServeHTTP implements http.Handler: a path outside Routes answers 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// serve proxies one route's requests, recording what they read.
func (h *Handler) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions:
		default:
			w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
			http.Error(w, fmt.Sprintf("query tap: %s is not a read method; the Prometheus read API takes GET or POST", r.Method), http.StatusMethodNotAllowed)
			return
		}
		h.requests.WithLabelValues(rt.endpoint).Inc()
		if rt.record != recordNone && r.Method != http.MethodOptions {
			if err := h.record(rt, r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		h.proxy.ServeHTTP(w, r)
	})
}

// record records what r reads. It fails only when r's form body cannot be
// read; a query that does not parse is counted and proxied unchanged.
func (h *Handler) record(rt route, r *http.Request) error {
	params, err := h.params(r)
	if err != nil {
		return err
	}
	var refs *promqlx.Refs
	switch rt.record {
	case recordQuery:
		if q := params.Get("query"); q != "" {
			refs, err = promqlx.Extract(q)
		}
	case recordMatches:
		if m := params["match[]"]; len(m) > 0 {
			refs, err = promqlx.ExtractSelectors(m...)
		}
	}
	if err != nil {
		h.failures.WithLabelValues(rt.endpoint).Inc()
		return nil
	}
	if refs == nil || (len(refs.Metrics) == 0 && len(refs.Patterns) == 0) {
		return nil
	}
	if rt.endpoint == "label_values" {
		refs.AddLabels(labelFromPath(r.URL.Path))
	}
	var user string
	if h.cfg.UserHeader != "" {
		user = r.Header.Get(h.cfg.UserHeader)
	}
	tenant := h.cfg.DefaultTenant
	if h.cfg.TenantHeader != "" {
		if t := strings.TrimSpace(r.Header.Get(h.cfg.TenantHeader)); t != "" { // as the write path reads it
			tenant = t
		}
	}
	h.cfg.Recorder.RecordQuery(tenant, refs, user, h.cfg.Now())
	return nil
}

func labelFromPath(p string) string {
	p = strings.TrimSuffix(p, "/values")
	name := p[strings.LastIndexByte(p, '/')+1:]
	if un, err := url.PathUnescape(name); err == nil {
		return un
	}
	return name
}

// params returns URL and form parameters without consuming the body.
func (h *Handler) params(r *http.Request) (url.Values, error) {
	vals := r.URL.Query()
	if r.Method != http.MethodPost || r.Body == nil {
		return vals, nil
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return vals, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
	if err != nil {
		return nil, fmt.Errorf("read form body: %w", err)
	}
	if len(body) > maxFormBody {
		return nil, errors.New("form body too large")
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("parse form body: %w", err)
	}
	for k, v := range form {
		vals[k] = append(vals[k], v...)
	}
	return vals, nil
}
