package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/datasets"
)

type apiAnswer struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func get(t *testing.T, srv *httptest.Server, path string) (int, apiAnswer) {
	t.Helper()
	return getAs(t, srv, path, "")
}

// getAs is get with the X-Scope-OrgID header set to tenant (none when empty).
func getAs(t *testing.T, srv *httptest.Server, path, tenant string) (int, apiAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var a apiAnswer
	require.NoError(t, json.Unmarshal(body, &a), string(body))
	return resp.StatusCode, a
}

func TestAPI(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	access := scenarioAccess(t, clock.Now())
	cfg := DefaultConfig()
	cfg.DropUnused = DropConfig{Mode: ModeShadow, GracePeriod: time.Hour}
	m, err := NewManager(cfg, Deps{
		Sources: []Source{&fakeSource{name: "dash", consumers: scenarioConsumers(t)}},
		Access:  access, Costs: scenarioCosts(), Logger: slog.New(slog.DiscardHandler), Now: clock.Now,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(NewAPI(m, "X-Scope-OrgID"))
	defer srv.Close()

	code, a := get(t, srv, "/promgov/api/v1/usage/metrics")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "error", a.Status)

	m.Refresh(context.Background())
	clock.Add(2 * time.Hour)
	m.Refresh(context.Background())

	code, a = get(t, srv, "/promgov/api/v1/usage/metrics?state=unused&sort=series")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "success", a.Status)
	var ms []map[string]any
	require.NoError(t, json.Unmarshal(a.Data, &ms))
	require.Len(t, ms, 3)
	require.Equal(t, "lonely", ms[0]["name"])
	require.Equal(t, "unused", ms[0]["state"])
	require.Equal(t, 1000.0, ms[0]["series"])
	require.Equal(t, 100.0, ms[0]["samples_rate"])
	require.Equal(t, []any{}, ms[0]["used_by"])
	require.Equal(t, 0.0, ms[0]["query_count"])
	require.Nil(t, ms[0]["last_queried"])
	require.Equal(t, "dead_input", ms[2]["name"])
	require.Equal(t, []any{map[string]any{"kind": "recording_rule", "id": "g/dead:rule", "title": "g/dead:rule"}}, ms[2]["used_by"])

	_, a = get(t, srv, "/promgov/api/v1/usage/metrics?state=used&sort=query_count&limit=1")
	require.NoError(t, json.Unmarshal(a.Data, &ms))
	require.Len(t, ms, 1)
	require.Equal(t, "queried_metric", ms[0]["name"])
	require.Equal(t, 3.0, ms[0]["query_count"])
	require.Equal(t, 2.0, ms[0]["distinct_users"])
	require.Equal(t, "2026-01-01T00:01:00Z", ms[0]["last_queried"])

	for _, bad := range []string{"?state=maybe", "?sort=size", "?limit=-1"} {
		code, a = get(t, srv, "/promgov/api/v1/usage/metrics"+bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Equal(t, "bad_data", a.ErrorType)
	}

	code, a = get(t, srv, "/promgov/api/v1/usage/sources")
	require.Equal(t, http.StatusOK, code)
	var srcs []map[string]any
	require.NoError(t, json.Unmarshal(a.Data, &srcs))
	require.Len(t, srcs, 1)
	require.Equal(t, "dash", srcs[0]["name"])
	require.Equal(t, true, srcs[0]["healthy"])
	require.Equal(t, 4.0, srcs[0]["consumers"])
	require.NotEmpty(t, srcs[0]["last_success"])

	code, a = get(t, srv, "/promgov/api/v1/usage/suggestions?limit=2")
	require.Equal(t, http.StatusOK, code)
	var ss []Suggestion
	require.NoError(t, json.Unmarshal(a.Data, &ss))
	require.Len(t, ss, 2)
	require.Equal(t, SuggestDropMetrics, ss[0].Kind)
	require.Equal(t, uint64(1900), ss[0].SeriesSaved)
	require.Equal(t, []string{"showing the 2 suggestions that save the most series of 5; limit=-1 answers all"}, a.Warnings)

	code, a = get(t, srv, "/promgov/api/v1/usage/policy")
	require.Equal(t, http.StatusOK, code)
	var ps PolicyStatus
	require.NoError(t, json.Unmarshal(a.Data, &ps))
	require.Equal(t, ModeShadow, ps.Mode)
	require.False(t, ps.Blocked)
	require.Equal(t, []string{"dead_input", "lonely", "lonely_bucket"}, ps.Candidates)
}

// TestAPIExampleMixins serves the kubernetes and node-exporter mixins'
// dashboards and rules as sources, with traffic made of the metrics they read
// plus a few nobody reads, and logs the unused answer (quoted in docs/usage.md).
func TestAPIExampleMixins(t *testing.T) {
	dir := datasets.MixinsDir(t)
	var srcs []Source
	for _, mixin := range []string{"kubernetes", "node-exporter"} {
		srcs = append(srcs, &DashboardFiles{Path: filepath.Join(dir, mixin, "dashboards")},
			&RuleFiles{Path: filepath.Join(dir, mixin, "alerts.yaml")}, &RuleFiles{Path: filepath.Join(dir, mixin, "rules.yaml")})
	}
	costs := StaticCosts{
		{Name: "node_cpu_seconds_total", Series: 1600, SamplesRate: 106.7, Labels: []LabelCost{{Name: "cpu"}, {Name: "mode"}, {Name: "instance"}, {Name: "job"}}},
		{Name: "node_vmstat_pgmajfault", Series: 20, SamplesRate: 1.3, Labels: []LabelCost{{Name: "instance"}, {Name: "job"}}},
		{Name: "node_scrape_collector_duration_seconds", Series: 900, SamplesRate: 60, Labels: []LabelCost{{Name: "collector"}, {Name: "instance"}, {Name: "job"}}},
		{Name: "go_gc_duration_seconds", Series: 350, SamplesRate: 23.3, Labels: []LabelCost{{Name: "quantile"}, {Name: "instance"}, {Name: "job"}}},
		// Recording rule outputs written back through the proxy that no dashboard or alert reads.
		{Name: "cluster_quantile:scheduler_scheduling_attempt_duration_seconds:histogram_quantile", Series: 9, SamplesRate: 0.15, Labels: []LabelCost{{Name: "quantile"}, {Name: "cluster"}, {Name: "job"}}},
		{Name: "node:node_num_cpu:sum", Series: 20, SamplesRate: 0.3, Labels: []LabelCost{{Name: "cluster"}, {Name: "node"}}},
	}
	m, err := NewManager(DefaultConfig(), Deps{Sources: srcs, Access: NewAccessStats(10, 10), Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	m.Refresh(context.Background())
	for _, st := range m.Sources() {
		require.True(t, st.Healthy, st.LastError)
	}
	srv := httptest.NewServer(NewAPI(m, "X-Scope-OrgID"))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/promgov/api/v1/usage/metrics?state=unused&sort=series")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	var a apiAnswer
	require.NoError(t, json.Unmarshal(body, &a))
	var ms []MetricReport
	require.NoError(t, json.Unmarshal(a.Data, &ms))
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"node_scrape_collector_duration_seconds", "go_gc_duration_seconds", "node:node_num_cpu:sum",
		"cluster_quantile:scheduler_scheduling_attempt_duration_seconds:histogram_quantile"}, names)
	for _, m := range ms {
		require.Equal(t, ReasonNoReaders, m.Reason, m.Name)
	}
	if os.Getenv("USAGE_PRINT_EXAMPLE") != "" {
		t.Logf("GET /promgov/api/v1/usage/metrics?state=unused&sort=series\n%s", body)
	}
}

// TestAPISuggestionLimit: suggestions come capped at DefaultSuggestionLimit
// with a warning naming how many there are; limit=N and limit=-1 change it.
func TestAPISuggestionLimit(t *testing.T) {
	var costs StaticCosts
	for i := range DefaultSuggestionLimit + 10 {
		costs = append(costs, MetricCost{Name: fmt.Sprintf("unused_%03d", i), Series: uint64(i + 1)})
	}
	m, err := NewManager(DefaultConfig(), Deps{Access: NewAccessStats(10, 10), Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	m.Refresh(context.Background())
	srv := httptest.NewServer(NewAPI(m, "X-Scope-OrgID"))
	defer srv.Close()

	total := DefaultSuggestionLimit + 10
	tests := map[string]struct {
		query        string
		wantCode     int
		wantN        int
		wantWarnings []string
		wantErr      string
	}{
		"default": {wantCode: http.StatusOK, wantN: DefaultSuggestionLimit,
			wantWarnings: []string{fmt.Sprintf("showing the %d suggestions that save the most series of %d; limit=-1 answers all", DefaultSuggestionLimit, total)}},
		"zero is the default": {query: "?limit=0", wantCode: http.StatusOK, wantN: DefaultSuggestionLimit,
			wantWarnings: []string{fmt.Sprintf("showing the %d suggestions that save the most series of %d; limit=-1 answers all", DefaultSuggestionLimit, total)}},
		"smaller":               {query: "?limit=3", wantCode: http.StatusOK, wantN: 3, wantWarnings: []string{fmt.Sprintf("showing the 3 suggestions that save the most series of %d; limit=-1 answers all", total)}},
		"larger than there are": {query: fmt.Sprintf("?limit=%d", total+1), wantCode: http.StatusOK, wantN: total},
		"all":                   {query: "?limit=-1", wantCode: http.StatusOK, wantN: total},
		"negative":              {query: "?limit=-2", wantCode: http.StatusBadRequest, wantErr: `limit: "-2" must be a positive integer, 0 for the default (50) or -1 for all`},
		"not a number":          {query: "?limit=ten", wantCode: http.StatusBadRequest, wantErr: `limit: "ten" must be a positive integer, 0 for the default (50) or -1 for all`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, a := get(t, srv, PathSuggestions+tc.query)
			require.Equal(t, tc.wantCode, code)
			if tc.wantErr != "" {
				require.Equal(t, "bad_data", a.ErrorType)
				require.Equal(t, tc.wantErr, a.Error)
				return
			}
			var ss []Suggestion
			require.NoError(t, json.Unmarshal(a.Data, &ss))
			require.Len(t, ss, tc.wantN)
			require.Equal(t, tc.wantWarnings, a.Warnings)
			// The cap keeps the suggestions that save the most.
			require.Equal(t, []string{fmt.Sprintf("unused_%03d", total-1)}, ss[0].Metrics)
			require.Equal(t, uint64(total-tc.wantN+1), ss[len(ss)-1].SeriesSaved)
		})
	}
}

// TestAPITenant: classification is cluster-wide; a tenant named by the
// header alone or the parameter is answered for every tenant with a
// warning, and a header and parameter that disagree are refused.
func TestAPITenant(t *testing.T) {
	m, err := NewManager(DefaultConfig(), Deps{Access: NewAccessStats(10, 10), Costs: scenarioCosts(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	m.Refresh(context.Background())
	srv := httptest.NewServer(NewAPI(m, "X-Scope-OrgID"))
	defer srv.Close()

	warning := `usage classification is cluster-wide: this answer covers every tenant, not only tenant "team-a"`
	tests := map[string]struct {
		path, header string
		wantCode     int
		wantWarnings []string
		wantErr      string
	}{
		"no tenant":           {path: PathMetrics, wantCode: http.StatusOK},
		"header alone":        {path: PathMetrics, header: "team-a", wantCode: http.StatusOK, wantWarnings: []string{warning}},
		"parameter alone":     {path: PathMetrics + "?tenant=team-a", wantCode: http.StatusOK, wantWarnings: []string{warning}},
		"both agree":          {path: PathMetrics + "?tenant=team-a", header: "team-a", wantCode: http.StatusOK, wantWarnings: []string{warning}},
		"suggestions, header": {path: PathSuggestions + "?limit=-1", header: "team-a", wantCode: http.StatusOK, wantWarnings: []string{warning}},
		"header and param clash": {path: PathMetrics + "?tenant=team-b", header: "team-a", wantCode: http.StatusBadRequest,
			wantErr: `tenant: the tenant parameter "team-b" and the X-Scope-OrgID header "team-a" name different tenants; send one, or the same in both`},
		"suggestions, clash": {path: PathSuggestions + "?tenant=team-b", header: "team-a", wantCode: http.StatusBadRequest,
			wantErr: `tenant: the tenant parameter "team-b" and the X-Scope-OrgID header "team-a" name different tenants; send one, or the same in both`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, a := getAs(t, srv, tc.path, tc.header)
			require.Equal(t, tc.wantCode, code, a.Error)
			require.Equal(t, tc.wantErr, a.Error)
			require.Equal(t, tc.wantWarnings, a.Warnings)
		})
	}
}
