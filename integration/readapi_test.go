package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiCall is one HTTP request of a read API client.
type apiCall struct {
	method, path string
	params       url.Values
	header       map[string]string
}

// do sends the call to base: GET with params in the URL, POST as a form.
func (a apiCall) do(t T, client *http.Client, base string) *http.Response {
	t.Helper()
	u := base + a.path
	var body io.Reader
	if a.method == http.MethodPost {
		body = strings.NewReader(a.params.Encode())
	} else if len(a.params) > 0 {
		u += "?" + a.params.Encode()
	}
	req, err := http.NewRequest(a.method, u, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range a.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	return resp
}

// read sends the call and returns the status, Content-Type and body.
func (a apiCall) read(t T, base string) (int, string, []byte) {
	t.Helper()
	resp := a.do(t, http.DefaultClient, base)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestGrafanaDataSourceThroughTap points the calls a Grafana Prometheus
// data source makes at the distributor's query tap and at the Prometheus
// 3.16 behind it: every answer must be byte-identical. promgov's own APIs
// answer under /promgov/api/v1, and their old /api/v1 paths redirect.
//
//	Grafana calls ──► distributor (tap) ──proxy──► Prometheus 3.16
//	          └──────────────── same calls ───────────────┘  compare
func TestGrafanaDataSourceThroughTap(t *testing.T) {
	t.Parallel()
	c := startUsageCluster(t, "off")
	now := time.Now().Truncate(time.Second)
	series := fixture("grafana", now)
	code, _, body := postRW(t, c.writeURL(), contentTypeV1, encodeV1(t, series), nil)
	require.Equal(t, http.StatusNoContent, code, body)
	eventually(t, func(ct *assert.CollectT) bool {
		return c.backend.count(ct, `count(last_over_time({__name__=~"grafana_.*"}[1h]))`) == float64(len(series))
	}, 30*time.Second, 200*time.Millisecond, "the backend never held the %d fixture series", len(series))

	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	win := url.Values{"start": {ts(-time.Hour)}, "end": {ts(time.Minute)}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	rng := with(win, "query", `sum by (job) (rate(grafana_requests_total[5m]))`, "step", "15")
	calls := map[string]apiCall{
		// The data source's health check, then the version probe.
		"health check":          {method: http.MethodGet, path: "/api/v1/query", params: url.Values{"query": {"1 + 1"}, "time": {ts(0)}}},
		"health check, POST":    {method: http.MethodPost, path: "/api/v1/query", params: url.Values{"query": {"1 + 1"}, "time": {ts(0)}}},
		"buildinfo":             {method: http.MethodGet, path: "/api/v1/status/buildinfo"},
		"labels":                {method: http.MethodGet, path: "/api/v1/labels", params: win},
		"labels, POST":          {method: http.MethodPost, path: "/api/v1/labels", params: with(win, "match[]", `{__name__=~"grafana_.*"}`)},
		"metric names":          {method: http.MethodGet, path: "/api/v1/label/__name__/values", params: win},
		"label values of match": {method: http.MethodGet, path: "/api/v1/label/job/values", params: with(win, "match[]", "grafana_requests_total")},
		"metadata":              {method: http.MethodGet, path: "/api/v1/metadata"},
		"metadata of a metric":  {method: http.MethodGet, path: "/api/v1/metadata", params: url.Values{"metric": {"grafana_requests_total"}, "limit": {"1"}}},
		"series":                {method: http.MethodGet, path: "/api/v1/series", params: with(win, "match[]", `{__name__=~"grafana_spread_0.*"}`)},
		"series, POST":          {method: http.MethodPost, path: "/api/v1/series", params: with(win, "match[]", "grafana_requests_total")},
		"instant query":         {method: http.MethodGet, path: "/api/v1/query", params: url.Values{"query": {`grafana_temperature_celsius[1h]`}, "time": {ts(time.Minute)}}},
		"range query":           {method: http.MethodGet, path: "/api/v1/query_range", params: rng},
		"range query, POST":     {method: http.MethodPost, path: "/api/v1/query_range", params: rng},
		"histogram range query": {method: http.MethodPost, path: "/api/v1/query_range", params: with(win, "query", `grafana_latency_seconds`, "step", "15")},
		"exemplars":             {method: http.MethodGet, path: "/api/v1/query_exemplars", params: with(win, "query", "grafana_requests_total")},
		"exemplars, POST":       {method: http.MethodPost, path: "/api/v1/query_exemplars", params: with(win, "query", "grafana_requests_total")},
		"format query":          {method: http.MethodGet, path: "/api/v1/format_query", params: url.Values{"query": {`sum(rate(grafana_requests_total[5m]))by(job)`}}},
		"format query, POST":    {method: http.MethodPost, path: "/api/v1/format_query", params: url.Values{"query": {`sum(rate(x[5m]))by(job)`}}},
		"rules":                 {method: http.MethodGet, path: "/api/v1/rules"},
		"alerting rules":        {method: http.MethodGet, path: "/api/v1/rules", params: url.Values{"type": {"alert"}}},
		"alerts":                {method: http.MethodGet, path: "/api/v1/alerts"},
		"flags":                 {method: http.MethodGet, path: "/api/v1/status/flags"},
		"config":                {method: http.MethodGet, path: "/api/v1/status/config"},
		"targets":               {method: http.MethodGet, path: "/api/v1/targets"},
		"bad query":             {method: http.MethodGet, path: "/api/v1/query", params: url.Values{"query": {"sum(("}}},
		"unknown label values":  {method: http.MethodGet, path: "/api/v1/label/nope/values"},
	}
	backendURL, distURL := "http://"+c.backend.addr, "http://"+c.distributor.webAddr
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			codeB, ctB, bodyB := call.read(t, backendURL)
			codeD, ctD, bodyD := call.read(t, distURL)
			if name != "bad query" {
				require.Equal(t, http.StatusOK, codeB, "%s", bodyB)
				require.Contains(t, string(bodyB), `"status":"success"`)
			}
			require.Equal(t, codeB, codeD)
			require.Equal(t, ctB, ctD)
			require.Equal(t, string(bodyB), string(bodyD), "the tap's answer differs from the backend's")
		})
	}
	// The data the answers carry is the fixture's, not empty answers that
	// would match trivially.
	_, _, b := calls["exemplars"].read(t, distURL)
	require.Contains(t, string(b), "4bf92f3577b34da6")
	_, _, b = calls["range query"].read(t, distURL)
	require.Contains(t, string(b), `"job":"api"`)
	_, _, b = calls["health check"].read(t, distURL)
	require.Contains(t, string(b), `"2"]`)

	// The tap still records what the queries read.
	eventually(t, func(ct *assert.CollectT) bool {
		return usageMetrics(ct, c, "")["grafana_requests_total"].QueryCount > 0
	}, 30*time.Second, 200*time.Millisecond, "the tap's queries of grafana_requests_total were never recorded")

	// promgov's own APIs moved; their old paths answer 308 to the new ones.
	requireLegacyRedirects(t, c.distributor, map[string]apiCall{
		"/promgov/api/v1/cardinality/metrics?limit=1": {method: http.MethodGet, path: "/api/v1/cardinality/metrics", params: url.Values{"limit": {"1"}}},
		"/promgov/api/v1/cardinality/tenants":         {method: http.MethodGet, path: "/api/v1/cardinality/tenants"},
		"/promgov/api/v1/usage/suggestions":           {method: http.MethodGet, path: "/api/v1/usage/suggestions"},
		"/promgov/api/v1/status/ring":                 {method: http.MethodGet, path: "/api/v1/status/ring"},
	})
	requireLegacyRedirects(t, c.ingesters[0], map[string]apiCall{
		"/promgov/api/v1/cardinality/metrics?limit=1": {method: http.MethodGet, path: "/api/v1/cardinality/metrics", params: url.Values{"limit": {"1"}}},
		"/promgov/api/v1/usage/access":                {method: http.MethodGet, path: "/api/v1/usage/access"},
		"/promgov/api/v1/status/ring":                 {method: http.MethodGet, path: "/api/v1/status/ring"},
	})
	// A POST is repeated with its body.
	resp := apiCall{method: http.MethodPost, path: "/api/v1/rules/test", params: url.Values{}}.do(t, noRedirects, c.distributor.url(""))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusPermanentRedirect, resp.StatusCode)
	resp, err := http.Post(c.distributor.url("/api/v1/rules/test"), "application/json",
		strings.NewReader(`{"tenant":"team-a","series":[{"series":"up{job=\"x\"}"}]}`))
	require.NoError(t, err)
	body2, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body2)
	require.Contains(t, string(body2), `"results"`)

	// Each old path warns once in the log, however often it is called.
	logged, err := os.ReadFile(c.distributor.proc.log)
	require.NoError(t, err)
	for _, p := range []string{"path=/api/v1/cardinality/", "path=/api/v1/usage/", "path=/api/v1/status/ring", "path=/api/v1/rules/test"} {
		require.Equal(t, 1, strings.Count(string(logged), p), "warnings for %s:\n%s", p, logged)
	}
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// requireLegacyRedirects checks that each call (an old promgov API path) of
// n answers 308 to its new location with the deprecation headers, twice,
// and that following it answers 200.
func requireLegacyRedirects(t *testing.T, n *node, calls map[string]apiCall) {
	t.Helper()
	for want, call := range calls {
		for range 2 {
			resp := call.do(t, noRedirects, n.url(""))
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusPermanentRedirect, resp.StatusCode, "%s %s", n.name, call.path)
			require.Equal(t, want, resp.Header.Get("Location"), "%s %s", n.name, call.path)
			require.NotEmpty(t, resp.Header.Get("Deprecation"))
			require.Contains(t, resp.Header.Get("Link"), `rel="successor-version"`)
		}
		resp := call.do(t, http.DefaultClient, n.url(""))
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s → %s: %s", n.name, call.path, want, b)
	}
}

// TestRulesPathWithoutQueryBackend: without a query backend, GET /api/v1/rules
// is not the Prometheus API's and still redirects to promgov's rules.
func TestRulesPathWithoutQueryBackend(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, 1)
	requireLegacyRedirects(t, c.distributor, map[string]apiCall{
		"/promgov/api/v1/rules": {method: http.MethodGet, path: "/api/v1/rules"},
	})
	_, _, b := apiCall{method: http.MethodGet, path: "/api/v1/rules"}.read(t, c.distributor.url(""))
	require.Contains(t, string(b), `"hash"`, "promgov's ruleset, not a Prometheus rules answer")
	// The read API is not served without a backend.
	code, _, _ := apiCall{method: http.MethodGet, path: "/api/v1/query", params: url.Values{"query": {"1"}}}.read(t, c.distributor.url(""))
	require.Equal(t, http.StatusNotFound, code)
}

// TestReadAPIsTenantFromHeader: the cardinality and query statistics APIs
// take the tenant from X-Scope-OrgID alone, as the write path does, on the
// distributor and on an ingester; the tenant parameter still works, and a
// header and parameter that disagree are refused.
func TestReadAPIsTenantFromHeader(t *testing.T) {
	t.Parallel()
	c := startUsageCluster(t, "off")
	for tenant, n := range map[string]int{"team-a": 2, "team-b": 3} {
		var s [][]string
		for i := range n {
			s = append(s, []string{"tenant_probe_total", "i", strconv.Itoa(i), "job", "app"})
		}
		writeV1As(t, c, tenant, time.Now(), s...)
	}
	// Each tenant queries the metric through the tap, team-b twice.
	for _, tenant := range []string{"team-a", "team-b", "team-b"} {
		code, _, b := apiCall{method: http.MethodGet, path: "/api/v1/query", params: url.Values{"query": {"tenant_probe_total"}},
			header: map[string]string{"X-Scope-OrgID": tenant}}.read(t, c.distributor.url(""))
		require.Equal(t, http.StatusOK, code, "%s", b)
	}

	type row struct {
		Tenant string `json:"tenant"`
		Series uint64 `json:"series"`
		Count  uint64 `json:"count"`
	}
	get := func(t T, n *node, path, tenantParam, tenantHeader string) (int, []row, string) {
		call := apiCall{method: http.MethodGet, path: path, params: url.Values{}}
		if tenantParam != "" {
			call.params.Set("tenant", tenantParam)
		}
		if tenantHeader != "" {
			call.header = map[string]string{"X-Scope-OrgID": tenantHeader}
		}
		code, _, b := call.read(t, n.url(""))
		var env struct {
			Data  json.RawMessage `json:"data"`
			Error string          `json:"error"`
		}
		require.NoError(t, json.Unmarshal(b, &env), "%s", b)
		var rows []row
		if code == http.StatusOK && strings.HasPrefix(string(env.Data), "[") {
			require.NoError(t, json.Unmarshal(env.Data, &rows))
		}
		if code == http.StatusOK && strings.HasPrefix(string(env.Data), "{") {
			var acc struct {
				Metrics []row `json:"metrics"`
			}
			require.NoError(t, json.Unmarshal(env.Data, &acc))
			rows = acc.Metrics
		}
		return code, rows, env.Error
	}
	const metricPath = "/promgov/api/v1/cardinality/metrics/tenant_probe_total"
	eventually(t, func(ct *assert.CollectT) bool {
		code, rows, _ := get(ct, c.distributor, metricPath, "", "")
		return code == http.StatusOK && len(rows) == 2
	}, 30*time.Second, 200*time.Millisecond, "the cluster never tracked tenant_probe_total for both tenants")

	for _, n := range []*node{c.distributor, c.ingesters[0]} {
		t.Run(n.name, func(t *testing.T) {
			for name, tc := range map[string]struct {
				param, header string
				want          []row
			}{
				"header alone":    {header: "team-b", want: []row{{Tenant: "team-b", Series: 3}}},
				"parameter alone": {param: "team-a", want: []row{{Tenant: "team-a", Series: 2}}},
				"both agree":      {param: "team-a", header: "team-a", want: []row{{Tenant: "team-a", Series: 2}}},
			} {
				code, rows, msg := get(t, n, metricPath, tc.param, tc.header)
				require.Equal(t, http.StatusOK, code, "%s: %s", name, msg)
				require.Equal(t, tc.want, rows, name)
				code, rows, msg = get(t, n, "/promgov/api/v1/cardinality/tenants", tc.param, tc.header)
				require.Equal(t, http.StatusOK, code, "%s: %s", name, msg)
				require.Len(t, rows, 1, name)
				require.Equal(t, tc.want[0].Tenant, rows[0].Tenant, name)
			}
			code, _, msg := get(t, n, metricPath, "team-a", "team-b")
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, `tenant: the tenant parameter "team-a" and the X-Scope-OrgID header "team-b" name different tenants; send one, or the same in both`, msg)
		})
	}

	// The query statistics an ingester holds, per tenant from the header.
	var rows []row
	eventually(t, func(ct *assert.CollectT) bool {
		_, rows, _ = get(ct, c.ingesters[0], "/promgov/api/v1/usage/access", "", "team-b")
		return len(rows) == 1 && rows[0].Count == 2
	}, 30*time.Second, 200*time.Millisecond, "team-b's two queries never reached the ingester: %v", lazy(func() any { return rows }))
	_, rows, _ = get(t, c.ingesters[0], "/promgov/api/v1/usage/access", "", "team-a")
	require.Len(t, rows, 1)
	require.EqualValues(t, 1, rows[0].Count)
	code, _, msg := get(t, c.ingesters[0], "/promgov/api/v1/usage/access", "team-a", "team-b")
	require.Equal(t, http.StatusBadRequest, code, msg)

	// Usage classification is cluster-wide: a tenant gets a warning saying so.
	var b []byte
	eventually(t, func(ct *assert.CollectT) bool {
		var code int
		code, _, b = apiCall{method: http.MethodGet, path: "/promgov/api/v1/usage/metrics",
			header: map[string]string{"X-Scope-OrgID": "team-b"}}.read(ct, c.distributor.url(""))
		return code == http.StatusOK // 503 until the first classification
	}, 30*time.Second, 200*time.Millisecond, "usage metrics never answered: %s", lazy(func() any { return string(b) }))
	var env struct {
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, []string{`usage classification is cluster-wide: this answer covers every tenant, not only tenant "team-b"`}, env.Warnings)
}
