// Package tap is the query tap: an http.Handler that reverse-proxies the
// Prometheus read API (/api/v1/query, query_range, series, labels and
// label/<name>/values) to a backend unchanged, and records which metrics and
// labels each request reads and who asked.
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

// Handler proxies and records. Safe for concurrent use.
type Handler struct {
	cfg      Options
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
	return h, nil
}

// endpoint classifies a request path; "" means not proxied.
func endpoint(path string) string {
	i := strings.Index(path, "/api/v1/")
	if i < 0 {
		return ""
	}
	p := path[i+len("/api/v1/"):]
	switch p {
	case "query", "query_range", "series", "labels":
		return p
	}
	if strings.HasPrefix(p, "label/") && strings.HasSuffix(p, "/values") && strings.Count(p, "/") == 2 {
		return "label_values"
	}
	return ""
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := endpoint(r.URL.Path)
	if ep == "" || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
		http.NotFound(w, r)
		return
	}
	h.requests.WithLabelValues(ep).Inc()
	params, err := h.params(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var refs *promqlx.Refs
	switch ep {
	case "query", "query_range":
		if q := params.Get("query"); q != "" {
			refs, err = promqlx.Extract(q)
		}
	default:
		if m := params["match[]"]; len(m) > 0 {
			refs, err = promqlx.ExtractSelectors(m...)
		}
	}
	if err != nil {
		h.failures.WithLabelValues(ep).Inc()
	} else if refs != nil && (len(refs.Metrics) > 0 || len(refs.Patterns) > 0) {
		if ep == "label_values" {
			refs.AddLabels(labelFromPath(r.URL.Path))
		}
		var user string
		if h.cfg.UserHeader != "" {
			user = r.Header.Get(h.cfg.UserHeader)
		}
		tenant := h.cfg.DefaultTenant
		if h.cfg.TenantHeader != "" {
			if t := r.Header.Get(h.cfg.TenantHeader); t != "" {
				tenant = t
			}
		}
		h.cfg.Recorder.RecordQuery(tenant, refs, user, h.cfg.Now())
	}
	h.proxy.ServeHTTP(w, r)
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
