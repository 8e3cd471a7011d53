package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

const testToken = "0123456789abcdef0123456789abcdef"

// testPolicy has a writer for tenant a (bcrypt password), a reader of a
// and b (bearer token), an admin (client certificate) and a user whose
// password the web configuration checks.
func testPolicy(t *testing.T) *Policy {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "reader.token"), []byte(testToken+"\n"), 0o600))
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	require.NoError(t, err)
	yml := `identities:
  - name: writer-a
    basic_auth_user: wa
    password_hash: ` + string(hash) + `
    roles: [write]
    tenants: [a]
  - name: reader-ab
    bearer_token_file: reader.token
    roles: [read]
    tenants: [a, b]
  - name: ops
    client_cert_cn: ops.example
    roles: [admin]
  - name: all-writer
    basic_auth_user: toolkit-user
    roles: [write, read]
    tenants: ["*"]
`
	p, err := Parse([]byte(yml), dir, map[string]bool{"toolkit-user": true})
	require.NoError(t, err)
	return p
}

func TestMiddleware(t *testing.T) {
	routes := append(CommonRoutes(),
		Route{Method: http.MethodPost, Path: "/api/v1/write", Access: Access{Role: RoleWrite, Scope: ScopeWriteTenant}},
		Route{Method: http.MethodGet, Path: "/promgov/api/v1/cardinality/", Access: Access{Role: RoleRead, Scope: ScopeReadTenant}},
	)
	type cred func(r *http.Request)
	basic := func(u, p string) cred { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	bearer := func(tok string) cred { return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) } }
	cert := func(cn string) cred {
		return func(r *http.Request) {
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: cn}}}}}
		}
	}
	for name, tc := range map[string]struct {
		method, target string
		cred           cred
		hdr            string
		want           int
		wantTenant     string // tenant header (write) or parameter (read) the handler saw
	}{
		"probe without credentials":          {method: "GET", target: "/-/ready", want: 200},
		"write without credentials":          {method: "POST", target: "/api/v1/write", want: 401},
		"write wrong password":               {method: "POST", target: "/api/v1/write", cred: basic("wa", "nope"), want: 401},
		"write unknown user":                 {method: "POST", target: "/api/v1/write", cred: basic("who", "secret"), want: 401},
		"write unknown token":                {method: "POST", target: "/api/v1/write", cred: bearer("x"), want: 401},
		"write own tenant":                   {method: "POST", target: "/api/v1/write", cred: basic("wa", "secret"), hdr: "a", want: 200, wantTenant: "a"},
		"write no tenant gets identity's":    {method: "POST", target: "/api/v1/write", cred: basic("wa", "secret"), want: 200, wantTenant: "a"},
		"write other tenant":                 {method: "POST", target: "/api/v1/write", cred: basic("wa", "secret"), hdr: "b", want: 403},
		"write invalid tenant is 400":        {method: "POST", target: "/api/v1/write", cred: basic("wa", "secret"), hdr: "a/b", want: 400},
		"reader invalid tenant param is 400": {method: "GET", target: "/promgov/api/v1/cardinality/metrics?tenant=..", cred: bearer(testToken), want: 400},
		"reader cannot write":                {method: "POST", target: "/api/v1/write", cred: bearer(testToken), want: 403},
		"writer cannot read":                 {method: "GET", target: "/promgov/api/v1/cardinality/metrics", cred: basic("wa", "secret"), want: 403},
		"reader reads own tenant":            {method: "GET", target: "/promgov/api/v1/cardinality/metrics?tenant=b", cred: bearer(testToken), want: 200, wantTenant: "b"},
		"reader reads other tenant":          {method: "GET", target: "/promgov/api/v1/cardinality/metrics?tenant=c", cred: bearer(testToken), want: 403},
		"reader other tenant by header":      {method: "GET", target: "/promgov/api/v1/cardinality/metrics", cred: bearer(testToken), hdr: "c", want: 403},
		"reader no tenant gets its first":    {method: "GET", target: "/promgov/api/v1/cardinality/metrics", cred: bearer(testToken), want: 200, wantTenant: "a"},
		"reader header and param disagree":   {method: "GET", target: "/promgov/api/v1/cardinality/metrics?tenant=a", cred: bearer(testToken), hdr: "b", want: 400},
		"scoped reader cluster-wide page":    {method: "GET", target: "/metrics", cred: bearer(testToken), want: 403},
		"reader cannot reload":               {method: "POST", target: "/-/reload", cred: bearer(testToken), want: 403},
		"admin reloads":                      {method: "POST", target: "/-/reload", cred: cert("ops.example"), want: 200},
		"unknown certificate":                {method: "POST", target: "/-/reload", cred: cert("rogue"), want: 401},
		"admin writes any tenant":            {method: "POST", target: "/api/v1/write", cred: cert("ops.example"), hdr: "z", want: 200, wantTenant: "z"},
		"toolkit-checked user reads cluster": {method: "GET", target: "/metrics", cred: basic("toolkit-user", "anything"), want: 200},
		"unlisted POST is admin":             {method: "DELETE", target: "/promgov/api/v1/jobs/1", cred: basic("toolkit-user", "x"), want: 403},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMiddleware(testPolicy(t), Options{Routes: routes, TenantHeader: "X-Scope-OrgID", Registerer: reg})
			var sawTenant string
			h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sawTenant = r.Header.Get("X-Scope-OrgID")
				if q := r.URL.Query().Get("tenant"); q != "" {
					sawTenant = q
				}
			}))
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.cred != nil {
				tc.cred(r)
			}
			if tc.hdr != "" {
				r.Header.Set("X-Scope-OrgID", tc.hdr)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.want == 200 {
				require.Equal(t, tc.wantTenant, sawTenant)
			}
			if tc.want == 401 {
				require.NotEmpty(t, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestAuditLog(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMiddleware(testPolicy(t), Options{Routes: CommonRoutes(), Registerer: reg})
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	for _, r := range []*http.Request{
		httptest.NewRequest("POST", "/-/reload", nil), // no credentials: denied
		func() *http.Request {
			r := httptest.NewRequest("POST", "/-/reload", nil)
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: "ops.example"}}}}}
			return r
		}(), // admin, the handler fails
	} {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(m.audit.WithLabelValues("reload", "denied")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.audit.WithLabelValues("reload", "failure")))
}

func TestAuthOffAllowsEverything(t *testing.T) {
	m := NewMiddleware(nil, Options{Routes: CommonRoutes(), Registerer: prometheus.NewRegistry()})
	h := m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/-/reload", nil))
	require.Equal(t, 200, w.Code)
	require.Equal(t, 1.0, testutil.ToFloat64(m.audit.WithLabelValues("reload", "success")))
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yml, want string }{
		"empty":            {"identities: []", "empty"},
		"unknown field":    {"identities:\n- name: x\n  rolez: [read]", "rolez"},
		"no name":          {"identities:\n- client_cert_cn: x\n  roles: [read]", "name"},
		"no role":          {"identities:\n- name: x\n  client_cert_cn: x", "roles"},
		"bad role":         {"identities:\n- name: x\n  client_cert_cn: x\n  roles: [root]", "unknown role"},
		"two credentials":  {"identities:\n- name: x\n  client_cert_cn: x\n  basic_auth_user: y\n  roles: [read]", "exactly one"},
		"no credential":    {"identities:\n- name: x\n  roles: [read]", "exactly one"},
		"unchecked user":   {"identities:\n- name: x\n  basic_auth_user: y\n  roles: [read]", "nothing would check"},
		"bad hash":         {"identities:\n- name: x\n  basic_auth_user: y\n  password_hash: plain\n  roles: [read]", "bcrypt"},
		"star with others": {"identities:\n- name: x\n  client_cert_cn: x\n  roles: [read]\n  tenants: ['*', a]", "alone"},
		"duplicate name":   {"identities:\n- name: x\n  client_cert_cn: x\n  roles: [read]\n- name: x\n  client_cert_cn: y\n  roles: [read]", "twice"},
		"duplicate cn":     {"identities:\n- name: x\n  client_cert_cn: x\n  roles: [read]\n- name: y\n  client_cert_cn: x\n  roles: [read]", "another identity"},
		"missing token":    {"identities:\n- name: x\n  bearer_token_file: nope\n  roles: [read]", "bearer_token_file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), t.TempDir(), nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("identities:\n- name: x\n  client_cert_cn: x\n  roles: [read]\n  tenants: [a]\n"))
	f.Add([]byte("identities:\n- name: x\n  basic_auth_user: u\n  password_hash: $2y$10$abcdefghijklmnopqrstuu\n  roles: [write]\n"))
	f.Add([]byte("identities:\n- name: x\n  bearer_token_file: tok\n  roles: [admin]\n  tenants: ['*']\n"))
	f.Add([]byte("{}"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tok"), []byte(testToken), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b, dir, map[string]bool{"u": true})
		if err != nil {
			return
		}
		// A loaded policy answers any request without panicking.
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth("u", "p")
		_, _ = p.Authenticate(r, NewPasswordCache())
	})
}

// TestPermits: a page asks whether its viewer may also call another route
// and gets the route's own refusal; nothing is counted as denied.
func TestPermits(t *testing.T) {
	routes := append(CommonRoutes(),
		Route{Method: http.MethodPost, Path: "/ui/config/rollback", Access: Access{Role: RoleAdmin, Scope: ScopeCluster, Action: "config_change"}},
		Route{Method: http.MethodGet, Path: "/promgov/api/v1/cardinality/", Access: Access{Role: RoleRead, Scope: ScopeReadTenant}},
	)
	reg := prometheus.NewRegistry()
	m := NewMiddleware(testPolicy(t), Options{Routes: routes, TenantHeader: "X-Scope-OrgID", Registerer: reg})
	for name, tc := range map[string]struct {
		cred           func(r *http.Request)
		method, path   string
		wantWho, wantE string
	}{
		"admin may roll back": {cred: func(r *http.Request) {
			r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: "ops.example"}}}}}
		}, method: "POST", path: "/ui/config/rollback", wantWho: "ops"},
		"reader may not roll back": {cred: func(r *http.Request) { r.SetBasicAuth("toolkit-user", "x") }, method: "POST", path: "/ui/config/rollback",
			wantWho: "all-writer", wantE: `identity "all-writer" lacks the admin role this action needs`},
		"unlisted POST is admin": {cred: func(r *http.Request) { r.SetBasicAuth("toolkit-user", "x") }, method: "POST", path: "/promgov/api/v1/other",
			wantWho: "all-writer", wantE: "lacks the admin role"},
		"scoped reader reads own tenant": {cred: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, method: "GET",
			path: "/promgov/api/v1/cardinality/metrics", wantWho: "reader-ab"},
		"scoped reader may not read the cluster": {cred: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, method: "GET",
			path: "/promgov/api/v1/rules", wantWho: "reader-ab", wantE: "answers for the whole cluster"},
	} {
		t.Run(name, func(t *testing.T) {
			var who string
			var err error
			h := m.Wrap(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { who, err = m.Permits(r, tc.method, tc.path) }))
			r := httptest.NewRequest(http.MethodGet, "/promgov/api/v1/cardinality/metrics", nil) // a page every identity may open
			tc.cred(r)
			h.ServeHTTP(httptest.NewRecorder(), r)
			require.Equal(t, tc.wantWho, who)
			if tc.wantE == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.wantE)
			}
		})
	}
	require.Zero(t, testutil.CollectAndCount(m.denied), "a permission check is not a refused request")

	off := NewMiddleware(nil, Options{Routes: routes, Registerer: prometheus.NewRegistry()})
	who, err := off.Permits(httptest.NewRequest("GET", "/", nil), "POST", "/ui/config/rollback")
	require.NoError(t, err, "authorisation off: everyone may")
	require.Equal(t, "anonymous", who)
}
