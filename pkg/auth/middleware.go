package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/web"
)

// Scope is which tenants a route touches.
type Scope int

// The scopes.
const (
	// ScopeCluster is cluster-wide data or an action on the whole process:
	// only identities that may act for every tenant.
	ScopeCluster Scope = iota
	// ScopePublic needs no credentials (the health and readiness probes).
	ScopePublic
	// ScopeWriteTenant is the write path: the tenant header must name one
	// of the identity's tenants and is set to its first when absent.
	ScopeWriteTenant
	// ScopeReadTenant is a read API answering for the tenant of its tenant
	// parameter or header (web.RequestTenant): it must be one of the
	// identity's, and is set to its first when absent, so a tenant-scoped
	// identity never sees cluster totals.
	ScopeReadTenant
)

// Access is what a route requires.
type Access struct {
	Role  Role
	Scope Scope
	// Action names an audited admin action ("reload", "rules_test"); empty
	// for routes that are not audited. A bounded set: it is a label value.
	Action string
}

// Route matches requests by method (empty: any) and path (a trailing "/"
// matches the subtree).
type Route struct {
	Method string
	Path   string
	// Exact matches Path only, not its subtree (for "/").
	Exact  bool
	Access Access
}

// Routes classifies requests; the first matching route wins. A request no
// route matches needs read and every tenant when it is a GET or HEAD, and
// is an audited admin action ("other") otherwise, so a route added later
// is never open by mistake.
type Routes []Route

// Classify returns what r requires.
func (rs Routes) Classify(r *http.Request) Access {
	for _, rt := range rs {
		if rt.Method != "" && rt.Method != r.Method {
			continue
		}
		if rt.Path == r.URL.Path || (!rt.Exact && strings.HasSuffix(rt.Path, "/") && strings.HasPrefix(r.URL.Path, rt.Path)) {
			return rt.Access
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return Access{Role: RoleRead, Scope: ScopeCluster}
	}
	return Access{Role: RoleAdmin, Scope: ScopeCluster, Action: "other"}
}

// CommonRoutes are the routes both binaries have: probes are public,
// reload and the runtime profiles are admin.
func CommonRoutes() Routes {
	reload := Access{Role: RoleAdmin, Scope: ScopeCluster, Action: "reload"}
	return Routes{
		{Method: http.MethodGet, Path: "/-/healthy", Access: Access{Scope: ScopePublic}},
		{Method: http.MethodGet, Path: "/-/ready", Access: Access{Scope: ScopePublic}},
		{Method: http.MethodPost, Path: "/-/reload", Access: reload},
		{Method: http.MethodPut, Path: "/-/reload", Access: reload},
		{Path: "/debug/pprof/", Access: Access{Role: RoleAdmin, Scope: ScopeCluster, Action: "pprof"}},
	}
}

// Options configure a Middleware.
type Options struct {
	// Routes says what each request requires.
	Routes Routes
	// TenantHeader is the tenant header of the write path and the read APIs.
	TenantHeader string
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Middleware authenticates and authorises every request before the handler
// it wraps, and writes an audit log line for every admin action. Safe for
// concurrent use; SetPolicy swaps the identities at runtime (a reload).
type Middleware struct {
	opts   Options
	policy atomic.Pointer[Policy] // nil: authorisation off
	cache  *PasswordCache

	denied *prometheus.CounterVec
	audit  *prometheus.CounterVec
}

// NewMiddleware returns a middleware with policy (nil: authorisation off;
// admin actions are still audited, as by "anonymous").
func NewMiddleware(policy *Policy, opts Options) *Middleware {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Middleware{
		opts:  opts,
		cache: NewPasswordCache(),
		denied: promauto.With(opts.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_auth_denied_requests_total",
			Help: "HTTP requests refused by authorisation, by reason (unauthenticated, role, tenant).",
		}, []string{"reason"}),
		audit: promauto.With(opts.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_audit_events_total",
			Help: "Admin actions (reload, candidate rules tests, profiles, other changes), by action and outcome (success, failure, denied).",
		}, []string{"action", "outcome"}),
	}
	m.policy.Store(policy)
	return m
}

// SetPolicy replaces the identities (nil turns authorisation off).
func (m *Middleware) SetPolicy(p *Policy) { m.policy.Store(p) }

// Wrap returns next behind the middleware.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acc := m.opts.Routes.Classify(r)
		id, code, err := m.authorize(r, acc)
		if err != nil {
			m.auditDenied(r, acc, id, code, err)
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Basic realm="promgov", Bearer`)
			}
			writeError(w, r, code, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if acc.Action == "" {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		outcome := "success"
		if sw.code >= 400 {
			outcome = "failure"
		}
		m.audit.WithLabelValues(acc.Action, outcome).Inc()
		m.opts.Logger.Info("audit", "action", acc.Action, "identity", id.Name, "source", r.RemoteAddr,
			"method", r.Method, "path", r.URL.Path, "status", sw.code, "outcome", outcome)
	})
}

type identityKey struct{}

// IdentityFrom returns the identity the middleware authorised the request
// of ctx as (Anonymous with authorisation off or on a public route), or
// nil outside the middleware.
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// authorize returns the caller's identity, or the status and error that
// refuse r. It may set r's tenant (header or parameter) from the identity.
func (m *Middleware) authorize(r *http.Request, acc Access) (*Identity, int, error) {
	p := m.policy.Load()
	if p == nil || acc.Scope == ScopePublic {
		return Anonymous, 0, nil
	}
	id, err := p.Authenticate(r, m.cache)
	if err != nil {
		m.denied.WithLabelValues("unauthenticated").Inc()
		return nil, http.StatusUnauthorized, err
	}
	if !id.Has(acc.Role) {
		m.denied.WithLabelValues("role").Inc()
		return id, http.StatusForbidden, fmt.Errorf("identity %q lacks the %s role this endpoint needs", id.Name, acc.Role)
	}
	if err := m.authorizeTenant(r, acc.Scope, id); err != nil {
		m.denied.WithLabelValues("tenant").Inc()
		var bad *badRequest
		if errors.As(err, &bad) {
			return id, http.StatusBadRequest, err
		}
		return id, http.StatusForbidden, err
	}
	return id, 0, nil
}

// badRequest is a request whose tenant cannot be read.
type badRequest struct{ err error }

func (b *badRequest) Error() string { return b.err.Error() }

func (m *Middleware) authorizeTenant(r *http.Request, scope Scope, id *Identity) error {
	if id.AllTenants() {
		return nil
	}
	switch scope {
	case ScopeWriteTenant:
		t := strings.TrimSpace(r.Header.Get(m.opts.TenantHeader))
		if t == "" {
			r.Header.Set(m.opts.TenantHeader, id.DefaultTenant())
			return nil
		}
		if err := remotewrite.ValidateTenantID(t); err != nil {
			err.(*remotewrite.TenantError).Header = m.opts.TenantHeader
			return &badRequest{err}
		}
		if !id.MayActFor(t) {
			return fmt.Errorf("identity %q may not write for tenant %q (%s)", id.Name, t, m.opts.TenantHeader)
		}
	case ScopeReadTenant:
		t, err := web.RequestTenant(r, m.opts.TenantHeader)
		if err != nil {
			return &badRequest{err}
		}
		if t == "" {
			q := r.URL.Query()
			q.Set("tenant", id.DefaultTenant())
			r.URL.RawQuery = q.Encode()
			return nil
		}
		if !id.MayActFor(t) {
			return fmt.Errorf("identity %q may not read tenant %q", id.Name, t)
		}
	default:
		return fmt.Errorf("identity %q is limited to tenants %v; this endpoint answers for the whole cluster and needs an identity with tenants [\"*\"]", id.Name, id.tenants)
	}
	return nil
}

func (m *Middleware) auditDenied(r *http.Request, acc Access, id *Identity, code int, err error) {
	name := "unauthenticated"
	if id != nil {
		name = id.Name
	}
	if acc.Action != "" {
		m.audit.WithLabelValues(acc.Action, "denied").Inc()
		m.opts.Logger.Warn("audit", "action", acc.Action, "identity", name, "source", r.RemoteAddr,
			"method", r.Method, "path", r.URL.Path, "status", code, "outcome", "denied", "err", err)
		return
	}
	m.opts.Logger.Debug("request refused", "identity", name, "source", r.RemoteAddr, "method", r.Method,
		"path", r.URL.Path, "status", code, "err", err)
}

// writeError answers in the API envelope under web.APIPrefix, in plain text
// elsewhere (the write path, as remote write senders log the body).
func writeError(w http.ResponseWriter, r *http.Request, code int, err error) {
	if strings.HasPrefix(r.URL.Path, web.APIPrefix) {
		typ := "forbidden"
		switch code {
		case http.StatusUnauthorized:
			typ = "unauthorized"
		case http.StatusBadRequest:
			typ = "bad_data"
		}
		web.WriteError(w, code, typ, err)
		return
	}
	http.Error(w, err.Error(), code)
}

// statusWriter records the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.written {
		s.code, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.written = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Setup loads the identities cfg names (none: authorisation off, logged
// loudly) and returns the middleware enforcing them on opts.Routes.
// webConfigFile is the exporter-toolkit web configuration (see Load).
func Setup(cfg Config, webConfigFile string, opts Options) (*Middleware, error) {
	policy, err := Load(cfg, webConfigFile)
	if err != nil {
		return nil, err
	}
	if policy == nil && opts.Logger != nil {
		opts.Logger.Warn("authorisation is OFF: anyone who reaches the HTTP port may write, read every tenant and reload; set --auth.config-file (docs/security.md)")
	}
	return NewMiddleware(policy, opts), nil
}

// TenantPages are GET routes (web UI pages) that answer for the request's
// tenant like the read APIs (ScopeReadTenant): a tenant-scoped identity
// with the read role may open them, for its tenants only. "/" matches
// exactly; other paths ending in "/" match their subtree.
func TenantPages(paths ...string) Routes {
	rs := make(Routes, 0, len(paths))
	for _, p := range paths {
		rs = append(rs, Route{Method: http.MethodGet, Path: p, Exact: p == "/", Access: Access{Role: RoleRead, Scope: ScopeReadTenant}})
	}
	return rs
}

// RequestScope is which tenants the caller of r may see, as the
// middleware authorised it: every tenant (all) for identities with
// tenants ["*"], with authorisation off, or outside the middleware.
func RequestScope(r *http.Request) (tenants []string, all bool) {
	id := IdentityFrom(r.Context())
	if id == nil || id.AllTenants() {
		return nil, true
	}
	return id.Tenants(), false
}

// Permits reports whether the caller of r, as the middleware authorised
// it, may also call method path with r's tenant header and parameters (the
// routes' role and scope, without authenticating again or counting a
// refusal), and names the caller. Pages use it to show only the actions
// their viewer may take and to refuse the others with the message the
// route itself would answer. With authorisation off every caller may, as
// "anonymous".
func (m *Middleware) Permits(r *http.Request, method, path string) (who string, err error) {
	id := IdentityFrom(r.Context())
	if m.policy.Load() == nil {
		if id == nil {
			id = Anonymous
		}
		return id.Name, nil
	}
	if id == nil {
		return "", errors.New("the request was not authenticated")
	}
	h := r.Clone(r.Context())
	h.Method = method
	h.URL = &url.URL{Path: path, RawQuery: r.URL.RawQuery}
	acc := m.opts.Routes.Classify(h)
	if acc.Scope == ScopePublic {
		return id.Name, nil
	}
	if !id.Has(acc.Role) {
		return id.Name, fmt.Errorf("identity %q lacks the %s role this action needs", id.Name, acc.Role)
	}
	if err := m.authorizeTenant(h, acc.Scope, id); err != nil {
		return id.Name, err
	}
	return id.Name, nil
}
