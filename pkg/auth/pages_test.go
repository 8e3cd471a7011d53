package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTenantPages: "/" matches only itself, other pages their subtree;
// everything else keeps the defaults.
func TestTenantPages(t *testing.T) {
	routes := append(CommonRoutes(), TenantPages("/", "/ui/offenders", "/ui/static/")...)
	readTenant := Access{Role: RoleRead, Scope: ScopeReadTenant}
	for name, tc := range map[string]struct {
		method, path string
		want         Access
	}{
		"overview":         {http.MethodGet, "/", readTenant},
		"offenders":        {http.MethodGet, "/ui/offenders", readTenant},
		"static file":      {http.MethodGet, "/ui/static/ui.css", readTenant},
		"unlisted page":    {http.MethodGet, "/ui/usage", Access{Role: RoleRead, Scope: ScopeCluster}},
		"not under /":      {http.MethodGet, "/metrics", Access{Role: RoleRead, Scope: ScopeCluster}},
		"POST to the root": {http.MethodPost, "/", Access{Role: RoleAdmin, Scope: ScopeCluster, Action: "other"}},
		"probe still open": {http.MethodGet, "/-/ready", Access{Scope: ScopePublic}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, routes.Classify(httptest.NewRequest(tc.method, tc.path, nil)))
		})
	}
}

// TestRequestScope: the identity the middleware authorised reaches the
// handler, and its tenants are the request's scope.
func TestRequestScope(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.token"), []byte("0123456789abcdef-a\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "all.token"), []byte("0123456789abcdef-all\n"), 0o600))
	file := filepath.Join(dir, "identities.yml")
	require.NoError(t, os.WriteFile(file, []byte(`identities:
  - {name: reader-a, bearer_token_file: a.token, roles: [read], tenants: [a, c]}
  - {name: reader-all, bearer_token_file: all.token, roles: [read], tenants: ["*"]}
`), 0o600))
	policy, err := LoadFile(file, nil)
	require.NoError(t, err)
	var tenants []string
	var all bool
	h := func(p *Policy) http.Handler {
		return NewMiddleware(p, Options{Routes: TenantPages("/"), TenantHeader: "X-Scope-OrgID"}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tenants, all = RequestScope(r)
		}))
	}
	for name, tc := range map[string]struct {
		policy  *Policy
		token   string
		tenants []string
		all     bool
	}{
		"tenant-scoped":     {policy, "0123456789abcdef-a", []string{"a", "c"}, false},
		"every tenant":      {policy, "0123456789abcdef-all", nil, true},
		"authorisation off": {nil, "", nil, true},
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			rec := httptest.NewRecorder()
			h(tc.policy).ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, tc.tenants, tenants)
			require.Equal(t, tc.all, all)
		})
	}
	_, outside := RequestScope(httptest.NewRequest(http.MethodGet, "/", nil))
	require.True(t, outside, "outside the middleware: every tenant")
}
