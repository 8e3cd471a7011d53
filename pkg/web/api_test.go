package web

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedirectLegacy(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+APIPrefix+"/cardinality/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "GET %s?%s", r.URL.EscapedPath(), r.URL.RawQuery)
	})
	mux.HandleFunc("POST "+APIPrefix+"/rules/test", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "POST %s %s", r.URL.Path, b)
	})
	RedirectLegacy(mux, logger, "GET "+APIPrefix+"/cardinality/", "POST "+APIPrefix+"/rules/test")
	srv := httptest.NewServer(mux)
	defer srv.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := map[string]struct {
		method, path, body string
		wantCode           int
		wantLocation       string
		wantFollowed       string
	}{
		"GET with a query": {
			method: http.MethodGet, path: "/api/v1/cardinality/metrics?sort=series&limit=10",
			wantCode: http.StatusPermanentRedirect, wantLocation: APIPrefix + "/cardinality/metrics?sort=series&limit=10",
			wantFollowed: "GET /promgov/api/v1/cardinality/metrics?sort=series&limit=10",
		},
		"an escaped path stays escaped": {
			method: http.MethodGet, path: "/api/v1/cardinality/metrics/a%2Fb",
			wantCode: http.StatusPermanentRedirect, wantLocation: APIPrefix + "/cardinality/metrics/a%2Fb",
			wantFollowed: "GET /promgov/api/v1/cardinality/metrics/a%2Fb?",
		},
		"POST keeps its body": {
			method: http.MethodPost, path: "/api/v1/rules/test", body: `{"series":[]}`,
			wantCode: http.StatusPermanentRedirect, wantLocation: APIPrefix + "/rules/test",
			wantFollowed: `POST /promgov/api/v1/rules/test {"series":[]}`,
		},
		"another method is not redirected": {
			method: http.MethodPut, path: "/api/v1/rules/test", wantCode: http.StatusMethodNotAllowed,
		},
		"another path is not redirected": {
			method: http.MethodGet, path: "/api/v1/query", wantCode: http.StatusNotFound,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			resp, err := noFollow.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tc.wantCode, resp.StatusCode)
			if tc.wantLocation == "" {
				return
			}
			require.Equal(t, tc.wantLocation, resp.Header.Get("Location"))
			require.Equal(t, fmt.Sprintf("@%d", LegacyDeprecated.Unix()), resp.Header.Get("Deprecation"))
			successor, _, _ := strings.Cut(tc.wantLocation, "?")
			require.Equal(t, "<"+successor+`>; rel="successor-version"`, resp.Header.Get("Link"))

			// An ordinary client follows it, body included.
			req, err = http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			resp, err = srv.Client().Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.wantFollowed, string(b))
		})
	}
	// One warning per legacy pattern, however often it is called.
	require.Equal(t, 1, strings.Count(logs.String(), `successor=/promgov/api/v1/cardinality/`), logs.String())
	require.Equal(t, 1, strings.Count(logs.String(), `successor=/promgov/api/v1/rules/test`), logs.String())
	require.Equal(t, 2, strings.Count(logs.String(), "level=WARN"), logs.String())
}

func TestRedirectLegacyPanicsOutsideThePrefix(t *testing.T) {
	require.Panics(t, func() { RedirectLegacy(http.NewServeMux(), nil, "GET /api/v1/query") })
	require.Panics(t, func() { RedirectLegacy(http.NewServeMux(), nil, APIPrefix+"/rules") })
}

func TestRequestTenant(t *testing.T) {
	tests := map[string]struct {
		query, header, headerName string
		want, wantErr             string
	}{
		"neither":                 {headerName: "X-Scope-OrgID", want: ""},
		"parameter":               {query: "tenant=a", headerName: "X-Scope-OrgID", want: "a"},
		"header alone":            {header: "a", headerName: "X-Scope-OrgID", want: "a"},
		"header trimmed":          {header: "  a ", headerName: "X-Scope-OrgID", want: "a"},
		"blank header is absent":  {header: "  ", query: "tenant=b", headerName: "X-Scope-OrgID", want: "b"},
		"both the same":           {query: "tenant=a", header: "a", headerName: "X-Scope-OrgID", want: "a"},
		"empty parameter, header": {query: "tenant=", header: "a", headerName: "X-Scope-OrgID", want: "a"},
		"no header configured":    {header: "a", want: ""},
		"configured header name":  {header: "a", headerName: "X-Tenant", want: "a"},
		"parameter with a slash": {query: "tenant=a%2Fb", headerName: "X-Scope-OrgID",
			wantErr: `tenant parameter: invalid tenant ID "a/b": byte 1 (0x2f) is not allowed; use letters, digits and ! - _ . * ' ( )`},
		"parameter not UTF-8": {query: "tenant=team%ff", headerName: "X-Scope-OrgID",
			wantErr: "tenant parameter: invalid tenant ID \"team\uFFFD\": byte 4 (0xff) is not allowed; use letters, digits and ! - _ . * ' ( )"},
		"parameter dot-dot": {query: "tenant=..", headerName: "X-Scope-OrgID",
			wantErr: `tenant parameter: invalid tenant ID "..": "." and ".." are not allowed`},
		"header too long": {header: strings.Repeat("a", 151), headerName: "X-Scope-OrgID",
			wantErr: `invalid tenant ID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" in header X-Scope-OrgID: longer than 150 bytes (151)`},
		"header with a slash": {header: "a/b", headerName: "X-Tenant",
			wantErr: `invalid tenant ID "a/b" in header X-Tenant: byte 1 (0x2f) is not allowed; use letters, digits and ! - _ . * ' ( )`},
		"both differ": {query: "tenant=b", header: "a", headerName: "X-Scope-OrgID",
			wantErr: `tenant: the tenant parameter "b" and the X-Scope-OrgID header "a" name different tenants; send one, or the same in both`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x?"+tc.query, nil)
			if tc.header != "" {
				h := tc.headerName
				if h == "" {
					h = "X-Scope-OrgID"
				}
				r.Header.Set(h, tc.header)
			}
			got, err := RequestTenant(r, tc.headerName)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
