package rules

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

const httpTestRules = `
rules:
  - name: drop-debug
    relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]
  - name: counters-total
    action: rewrite
    naming: {type_suffixes: true}
  - name: team-a-needs-team
    scope: {tenants: [team-a]}
    action: drop
    labels: {required: [team]}
`

func newTestManager(t *testing.T) *Manager {
	t.Helper()
	m := NewManager(nil, nil)
	cfg, err := LoadConfig([]byte(httpTestRules))
	require.NoError(t, err)
	require.NoError(t, m.Reload(cfg))
	return m
}

type testAPIResponse struct {
	Status    string           `json:"status"`
	Data      TestResponseData `json:"data"`
	ErrorType string           `json:"errorType"`
	Error     string           `json:"error"`
}

func doTest(t *testing.T, h http.Handler, method, contentType, body string, header map[string]string) (int, testAPIResponse) {
	t.Helper()
	req := httptest.NewRequest(method, "/promgov/api/v1/rules/test", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp testAPIResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp), rec.Body.String())
	return rec.Code, resp
}

func TestTestHandler(t *testing.T) {
	m := newTestManager(t)
	h := TestHandler(m, nil)
	cases := []struct {
		name        string
		contentType string
		body        string
		header      map[string]string
		wantCode    int
		check       func(t *testing.T, r testAPIResponse)
	}{
		{
			name: "json series and labels", contentType: "application/json",
			body: `{"tenant": "team-a", "series": [
				{"series": "debug_x{job=\"a\"}"},
				{"labels": {"__name__": "requests", "team": "core"}, "type": "counter"},
				{"series": "up", "tenant": "team-b"},
				{"series": "up"}]}`,
			wantCode: http.StatusOK,
			check: func(t *testing.T, r testAPIResponse) {
				require.False(t, r.Data.Ruleset.Candidate)
				require.Equal(t, m.Active().Hash, r.Data.Ruleset.Hash)
				require.Len(t, r.Data.Results, 4)
				d := r.Data.Results[0]
				require.Equal(t, Dropped, d.Action)
				require.Equal(t, "drop-debug", d.Rule)
				require.Empty(t, d.Output)
				require.Len(t, d.Trace, 1)
				require.Equal(t, EffectDropped, d.Trace[0].Effect)
				c := r.Data.Results[1]
				require.Equal(t, Changed, c.Action)
				require.Equal(t, `{__name__="requests_total", team="core"}`, c.Output)
				require.Equal(t, Kept, r.Data.Results[2].Action, "team-b is out of scope")
				require.Equal(t, "team-b", r.Data.Results[2].Tenant)
				require.Equal(t, Dropped, r.Data.Results[3].Action)
				require.Equal(t, "team-a-needs-team", r.Data.Results[3].Rule)
				require.Len(t, r.Data.Results[3].Trace, 3)
			},
		},
		{
			name: "text exposition with types", contentType: "text/plain; version=0.0.4",
			header:   map[string]string{TenantHeader: "team-b"},
			body:     "# TYPE requests counter\nrequests{code=\"200\"} 1\nrequests{code=\"200\"} 2\n# TYPE temp gauge\ntemp 3\ndebug_a 1\n",
			wantCode: http.StatusOK,
			check: func(t *testing.T, r testAPIResponse) {
				require.Len(t, r.Data.Results, 3, "duplicates are tested once")
				require.Equal(t, "counter", r.Data.Results[0].Type)
				require.Equal(t, `{__name__="requests_total", code="200"}`, r.Data.Results[0].Output)
				require.Equal(t, Kept, r.Data.Results[1].Action)
				require.Equal(t, Dropped, r.Data.Results[2].Action)
				require.Equal(t, "team-b", r.Data.Results[2].Tenant)
			},
		},
		{
			name: "openmetrics exposition", contentType: "application/openmetrics-text; version=1.0.0",
			body:     "# TYPE latency_seconds histogram\n# UNIT latency_seconds seconds\nlatency_seconds_bucket{le=\"1\"} 1\nlatency_seconds_count 1\nlatency_seconds_sum 1\n# EOF\n",
			wantCode: http.StatusOK,
			check: func(t *testing.T, r testAPIResponse) {
				require.Len(t, r.Data.Results, 3)
				require.Equal(t, "histogram", r.Data.Results[0].Type)
				require.Equal(t, "seconds", r.Data.Results[0].Unit)
				require.Equal(t, Kept, r.Data.Results[0].Action)
			},
		},
		{
			name: "candidate rules", contentType: "application/json",
			body:     `{"rules": "rules:\n- name: cand\n  action: tag\n  labels: {forbidden: [user]}\n", "series": [{"series": "debug_x{user=\"u\"}"}]}`,
			wantCode: http.StatusOK,
			check: func(t *testing.T, r testAPIResponse) {
				require.True(t, r.Data.Ruleset.Candidate)
				require.Equal(t, 1, r.Data.Ruleset.Rules)
				require.Equal(t, Changed, r.Data.Results[0].Action)
				require.Equal(t, `{__name__="debug_x", governance_violation="cand", user="u"}`, r.Data.Results[0].Output)
			},
		},
		{
			name: "json exposition field", contentType: "application/json",
			body:     `{"tenant": "x", "exposition": "# TYPE a counter\na 1\n"}`,
			wantCode: http.StatusOK,
			check: func(t *testing.T, r testAPIResponse) {
				require.Equal(t, `{__name__="a_total"}`, r.Data.Results[0].Output)
			},
		},
		{name: "invalid candidate", contentType: "application/json", body: `{"rules": "rules:\n- name: x\n", "series": [{"series": "a"}]}`,
			wantCode: http.StatusBadRequest, check: func(t *testing.T, r testAPIResponse) {
				require.Equal(t, "error", r.Status)
				require.Contains(t, r.Error, "candidate rules")
				require.Contains(t, r.Error, "set exactly one of")
			}},
		{name: "invalid tenant header", contentType: "text/plain", header: map[string]string{TenantHeader: "a/b"}, body: "a 1\n",
			wantCode: http.StatusBadRequest, check: func(t *testing.T, r testAPIResponse) {
				require.Contains(t, r.Error, `invalid tenant ID "a/b": byte 1 (0x2f) is not allowed`)
			}},
		{name: "invalid series tenant", contentType: "application/json", body: `{"series": [{"series": "up", "tenant": ".."}]}`,
			wantCode: http.StatusBadRequest, check: func(t *testing.T, r testAPIResponse) {
				require.Contains(t, r.Error, `series[0]: invalid tenant ID ".."`)
			}},
		{name: "bad json", contentType: "application/json", body: `{"series": [`, wantCode: http.StatusBadRequest},
		{name: "unknown json field", contentType: "application/json", body: `{"serie": []}`, wantCode: http.StatusBadRequest},
		{name: "no series", contentType: "application/json", body: `{}`, wantCode: http.StatusBadRequest},
		{name: "bad series notation", contentType: "application/json", body: `{"series": [{"series": "a{"}]}`, wantCode: http.StatusBadRequest},
		{name: "series and labels", contentType: "application/json", body: `{"series": [{"series": "a", "labels": {"b": "c"}}]}`, wantCode: http.StatusBadRequest},
		{name: "bad type", contentType: "application/json", body: `{"series": [{"series": "a", "type": "countr"}]}`, wantCode: http.StatusBadRequest},
		{name: "bad exposition", contentType: "text/plain", body: "a{ 1\n", wantCode: http.StatusBadRequest},
		{name: "unsupported content type", contentType: "application/x-protobuf", body: "x", wantCode: http.StatusBadRequest},
		{name: "too large", contentType: "text/plain", body: strings.Repeat("a 1\n", DefaultTestMaxBodyBytes/4+1), wantCode: http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, resp := doTest(t, h, http.MethodPost, c.contentType, c.body, c.header)
			require.Equal(t, c.wantCode, code, "%+v", resp)
			if code != http.StatusOK {
				require.Equal(t, "error", resp.Status)
				require.NotEmpty(t, resp.Error)
			}
			if c.check != nil {
				c.check(t, resp)
			}
		})
	}
}

func TestTestHandlerMethod(t *testing.T) {
	code, resp := doTest(t, TestHandler(newTestManager(t), nil), http.MethodGet, "", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.Equal(t, "error", resp.Status)
}

func TestRulesHandler(t *testing.T) {
	m := newTestManager(t)
	h := RulesHandler(m)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/promgov/api/v1/rules", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var resp struct {
		Status string    `json:"status"`
		Data   RulesData `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
	require.Equal(t, "success", resp.Status)
	require.Equal(t, m.Active().Hash, resp.Data.Hash)
	require.True(t, m.Active().LoadedAt.Equal(resp.Data.LoadedAt))
	require.Len(t, resp.Data.Rules, 3)
	require.Equal(t, RuleSummary{Name: "drop-debug", Kind: KindRelabel, Mode: ModeEnforce}, withoutConfig(resp.Data.Rules[0]))
	require.Equal(t, []string{"team-a"}, resp.Data.Rules[2].Scope.Tenants)
	require.Equal(t, ActionDrop, resp.Data.Rules[2].Action)
	require.Contains(t, resp.Data.YAML, "debug_.*")
	// The YAML round-trips to the same ruleset.
	cfg, err := LoadConfig([]byte(resp.Data.YAML))
	require.NoError(t, err)
	h2, err := configHash(cfg)
	require.NoError(t, err)
	require.Equal(t, m.Active().Hash, h2)

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/promgov/api/v1/rules", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

func withoutConfig(r RuleSummary) RuleSummary {
	r.Config = nil
	r.Scope = ScopeConfig{}
	return r
}

// TestTestHandlerCountsNothing checks that tracing series through the
// active rules is not traffic: no rule counter moves, whatever the rules
// did to the traced series (drop, rewrite, type unknown, invalid after a
// rewrite), while the same series applied for real do count.
func TestTestHandlerCountsNothing(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewManager(nil, reg)
	cfg, err := LoadConfig([]byte(httpTestRules + `
  - name: blank-name
    relabel_configs: [{source_labels: [__name__], regex: "x", target_label: __name__, replacement: ""}]
`))
	require.NoError(t, err)
	require.NoError(t, m.Reload(cfg))
	names := []string{"promgov_rule_series_total", "promgov_rule_type_unknown_total", "promgov_rule_invalid_series_dropped_total"}
	total := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		sum := 0.0
		for _, mf := range mfs {
			if slices.Contains(names, mf.GetName()) {
				for _, mt := range mf.GetMetric() {
					sum += mt.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	body := `{"tenant": "team-a", "series": [
		{"series": "debug_x{job=\"a\"}"},
		{"labels": {"__name__": "requests", "team": "core"}, "type": "counter"},
		{"series": "up{team=\"core\"}"},
		{"series": "x{team=\"core\"}", "type": "gauge"}]}`
	code, resp := doTest(t, TestHandler(m, nil), http.MethodPost, "application/json", body, nil)
	require.Equal(t, http.StatusOK, code, resp.Error)
	require.Equal(t, Dropped, resp.Data.Results[0].Action)
	require.Equal(t, Changed, resp.Data.Results[1].Action)
	require.Equal(t, Dropped, resp.Data.Results[3].Action, "invalid after blank-name")
	require.Zero(t, total(), "a trace through the active rules must not count as traffic")

	// The same series through the live path count: the counters are wired.
	ts := TestSeries{Series: `debug_x{job="a"}`}
	s, err := ts.toSeries("team-a")
	require.NoError(t, err)
	m.Active().Engine.Apply(&s, nil)
	require.Equal(t, 1.0, total())
}
