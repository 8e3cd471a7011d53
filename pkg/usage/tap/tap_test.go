package tap

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type record struct {
	metrics []string
	labels  map[string][]string
	user    string
	tenant  string
}

type fakeRecorder struct {
	mu   sync.Mutex
	recs []record
}

func (f *fakeRecorder) RecordQuery(tenant string, refs *promqlx.Refs, user string, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := record{metrics: refs.Names(), labels: map[string][]string{}, user: user, tenant: tenant}
	for n, u := range refs.Metrics {
		r.labels[n] = u.LabelNames()
	}
	for _, p := range refs.Patterns {
		r.metrics = append(r.metrics, "~"+p.Regex)
	}
	f.recs = append(f.recs, r)
}

func (f *fakeRecorder) take() []record {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.recs
	f.recs = nil
	return out
}

type seen struct {
	method, path, query, body, user string
}

func TestTap(t *testing.T) {
	var mu sync.Mutex
	var got seen
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Get("X-Grafana-User")}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", "yes")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	defer backend.Close()
	bu, err := url.Parse(backend.URL + "/prom")
	require.NoError(t, err)
	rec := &fakeRecorder{}
	reg := prometheus.NewRegistry()
	h, err := New(Options{Backend: bu, UserHeader: "X-Grafana-User", TenantHeader: "X-Scope-OrgID", DefaultTenant: "anonymous", Recorder: rec, Registerer: reg})
	require.NoError(t, err)
	front := httptest.NewServer(h)
	defer front.Close()

	tests := map[string]struct {
		method, path, query, form, user, tenant string
		wantStatus                              int
		want                                    []record
	}{
		"instant query": {
			method: "GET", path: "/api/v1/query", query: `query=sum by (job) (rate(http_requests_total{code="500"}[5m]))&time=1`, user: "alice",
			wantStatus: 200,
			want:       []record{{metrics: []string{"http_requests_total"}, labels: map[string][]string{"http_requests_total": {"code", "job"}}, user: "alice", tenant: "anonymous"}},
		},
		"range query via POST form": {
			method: "POST", path: "/api/v1/query_range", form: `query=up{job="node"}&start=1&end=2&step=1`, user: "bob", tenant: "team-a",
			wantStatus: 200,
			want:       []record{{metrics: []string{"up"}, labels: map[string][]string{"up": {"job"}}, user: "bob", tenant: "team-a"}},
		},
		"series": {
			method: "GET", path: "/api/v1/series", query: `match[]=node_load1&match[]={__name__=~"node_cpu.*"}`,
			wantStatus: 200,
			want:       []record{{metrics: []string{"node_load1", "~node_cpu.*"}, labels: map[string][]string{"node_load1": nil}, tenant: "anonymous"}},
		},
		"label values with match": {
			method: "GET", path: "/api/v1/label/instance/values", query: `match[]=up`,
			wantStatus: 200,
			want:       []record{{metrics: []string{"up"}, labels: map[string][]string{"up": {"instance"}}, tenant: "anonymous"}},
		},
		"labels without match records nothing": {
			method: "GET", path: "/api/v1/labels", wantStatus: 200,
		},
		"unparseable query is proxied unchanged": {
			method: "GET", path: "/api/v1/query", query: `query=sum((`, wantStatus: 200,
		},
		"buildinfo is proxied, nothing recorded": {
			method: "GET", path: "/api/v1/status/buildinfo", wantStatus: 200,
		},
		"exemplars via POST form are proxied, nothing recorded": {
			method: "POST", path: "/api/v1/query_exemplars", form: `query=up&start=1&end=2`, wantStatus: 200,
		},
		"rules are the backend's": {
			method: "GET", path: "/api/v1/rules", query: `type=alert`, wantStatus: 200,
		},
		"admin API is not proxied": {
			method: "POST", path: "/api/v1/admin/tsdb/snapshot", wantStatus: 404,
		},
		"remote write is not proxied": {
			method: "POST", path: "/api/v1/write", wantStatus: 404,
		},
		"OTLP is not proxied": {
			method: "POST", path: "/api/v1/otlp/v1/metrics", wantStatus: 404,
		},
		"unknown paths are not proxied": {
			method: "GET", path: "/api/v1/nothing", wantStatus: 404,
		},
		"a write method is refused": {
			method: "DELETE", path: "/api/v1/series", query: `match[]=up`, wantStatus: 405,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u := front.URL + tc.path
			if tc.query != "" {
				u += "?" + url.Values(mustParseQuery(t, tc.query)).Encode()
			}
			var body io.Reader
			if tc.form != "" {
				body = strings.NewReader(url.Values(mustParseQuery(t, tc.form)).Encode())
			}
			req, err := http.NewRequest(tc.method, u, body)
			require.NoError(t, err)
			if tc.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.user != "" {
				req.Header.Set("X-Grafana-User", tc.user)
			}
			if tc.tenant != "" {
				req.Header.Set("X-Scope-OrgID", tc.tenant)
			}
			resp, err := front.Client().Do(req)
			require.NoError(t, err)
			respBody, _ := io.ReadAll(resp.Body)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tc.wantStatus, resp.StatusCode)
			require.Equal(t, tc.want, rec.take())
			if tc.wantStatus != 200 {
				return
			}
			require.Equal(t, "yes", resp.Header.Get("X-Backend"))
			require.Contains(t, string(respBody), `"status":"success"`)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tc.method, got.method)
			require.Equal(t, "/prom"+tc.path, got.path, "path is forwarded unchanged under the backend prefix")
			require.Equal(t, req.URL.RawQuery, got.query)
			require.Equal(t, tc.user, got.user)
			if tc.form != "" {
				require.Equal(t, url.Values(mustParseQuery(t, tc.form)).Encode(), got.body, "form body is forwarded unchanged")
			}
		})
	}
	require.Equal(t, 2.0, testutil.ToFloat64(h.requests.WithLabelValues("query")))
	require.Equal(t, 1.0, testutil.ToFloat64(h.failures.WithLabelValues("query")))
}

// TestTapRoutes: every route of the read API reaches the backend, under
// the backend URL's path, with its method, query and body.
func TestTapRoutes(t *testing.T) {
	type call struct{ method, path, query, body string }
	calls := make(chan call, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls <- call{r.Method, r.URL.Path, r.URL.RawQuery, string(body)}
		_, _ = w.Write([]byte(`{"status":"success","data":{}}`))
	}))
	defer backend.Close()
	bu, err := url.Parse(backend.URL + "/prometheus")
	require.NoError(t, err)
	h, err := New(Options{Backend: bu, Recorder: &fakeRecorder{}, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	mux := http.NewServeMux()
	for _, p := range Routes() {
		mux.Handle(p, h)
	}
	front := httptest.NewServer(mux)
	defer front.Close()

	for _, pattern := range Routes() {
		path := strings.Replace(pattern, "{name}", "__name__", 1)
		if strings.HasSuffix(path, "/") {
			path += "sub"
		}
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodOptions} {
			t.Run(method+" "+path, func(t *testing.T) {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("match%5B%5D=up")
				}
				req, err := http.NewRequest(method, front.URL+path+"?x=1", body)
				require.NoError(t, err)
				if body != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := front.Client().Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, http.StatusOK, resp.StatusCode)
				got := <-calls
				want := call{method, "/prometheus" + path, "x=1", ""}
				if method == http.MethodPost {
					want.body = "match%5B%5D=up"
				}
				require.Equal(t, want, got)
			})
		}
	}
}

func TestTapBackendDown(t *testing.T) {
	bu, err := url.Parse("http://127.0.0.1:1")
	require.NoError(t, err)
	h, err := New(Options{Backend: bu, Recorder: &fakeRecorder{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/query?query=up", nil))
	require.Equal(t, http.StatusBadGateway, w.Code)
}

func TestNewErrors(t *testing.T) {
	_, err := New(Options{Recorder: &fakeRecorder{}})
	require.Error(t, err)
	bu, _ := url.Parse("http://x")
	_, err = New(Options{Backend: bu})
	require.Error(t, err)
}

func mustParseQuery(t *testing.T, q string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = append(out[k], v)
	}
	return out
}

func BenchmarkTapQuery(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{}}`))
	}))
	defer backend.Close()
	bu, _ := url.Parse(backend.URL)
	h, err := New(Options{Backend: bu, Recorder: &fakeRecorder{}})
	require.NoError(b, err)
	q := "/api/v1/query?" + url.Values{"query": {`sum by (job) (rate(http_requests_total[5m]))`}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", q, nil))
	}
}
