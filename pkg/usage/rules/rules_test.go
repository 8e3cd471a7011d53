package rules

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFile(t *testing.T) {
	data, err := os.ReadFile("testdata/prometheusrule.yaml")
	require.NoError(t, err)
	rs, err := ParseFile(data)
	require.NoError(t, err)
	require.Len(t, rs, 3)

	require.Equal(t, KindRecording, rs[0].Kind)
	require.Equal(t, "job:http_requests:rate5m", rs[0].Name)
	require.Equal(t, []string{"http_requests_total"}, rs[0].Refs.Names())

	require.Equal(t, KindAlert, rs[1].Kind)
	require.Equal(t, "example.rules/HighErrors", rs[1].ID())
	require.Equal(t, []string{"http_errors_total", "job:http_requests:rate5m"}, rs[1].Refs.Names())
	// $labels.cluster in the annotation counts as a label reference.
	require.Equal(t, []string{"cluster", "job"}, rs[1].Refs.Metrics["http_errors_total"].LabelNames())

	require.Equal(t, "listed/Down", rs[2].ID())
}

func TestParseFileErrors(t *testing.T) {
	tests := map[string]struct {
		in       string
		yamlErr  bool
		exprErrs int
	}{
		"bad yaml":   {in: "groups: [", yamlErr: true},
		"bad expr":   {in: "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum((\n", exprErrs: 1},
		"empty file": {in: "null\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rs, err := ParseFile([]byte(tc.in))
			if tc.yamlErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			n := 0
			for _, r := range rs {
				if r.Err != nil {
					n++
				}
			}
			require.Equal(t, tc.exprErrs, n)
		})
	}
}

func TestParseGrafanaAlerts(t *testing.T) {
	data, err := os.ReadFile("testdata/grafana-alerts.yaml")
	require.NoError(t, err)
	rs, err := ParseGrafanaAlerts(data)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, KindGrafanaAlert, rs[0].Kind)
	require.Equal(t, "Infra/infra/disk-full A", rs[0].ID())
	require.Equal(t, []string{"node_filesystem_avail_bytes", "node_filesystem_size_bytes"}, rs[0].Refs.Names())
}

const promRulesAnswer = `{"status":"success","data":{"groups":[{"name":"g","file":"/etc/prometheus/rules.yaml","rules":[
 {"state":"inactive","name":"InstanceDown","query":"up{job=\"node\"} == 0","duration":300,"labels":{},"annotations":{"summary":"{{ $labels.instance }} down"},"alerts":[],"health":"ok","type":"alerting"},
 {"name":"job:up:sum","query":"sum by (job) (up)","labels":{},"health":"ok","type":"recording"}
],"interval":60}]}}`

func TestClient(t *testing.T) {
	var gotTenant, gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTenant, gotPath = r.Header.Get("X-Scope-OrgID"), r.URL.Path
		switch r.URL.Path {
		case "/prometheus/api/v1/rules", "/api/v1/rules":
			_, _ = w.Write([]byte(promRulesAnswer))
		case "/broken/api/v1/rules":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"internal","error":"ruler down"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tests := map[string]struct {
		url, tenant string
		wantPath    string
		wantErr     bool
	}{
		"prometheus":    {url: srv.URL, wantPath: "/api/v1/rules"},
		"vmalert":       {url: srv.URL + "/", wantPath: "/api/v1/rules"},
		"mimir":         {url: srv.URL + "/prometheus", tenant: "team-a", wantPath: "/prometheus/api/v1/rules"},
		"error answer":  {url: srv.URL + "/broken", wantErr: true},
		"missing route": {url: srv.URL + "/nope", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := NewClient(ClientOptions{URL: tc.url, Tenant: tc.tenant, HTTPClient: srv.Client()})
			require.NoError(t, err)
			rs, err := c.Rules(context.Background())
			if tc.wantErr {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantPath, gotPath)
			require.Equal(t, tc.tenant, gotTenant)
			require.Len(t, rs, 2)
			require.Equal(t, KindAlert, rs[0].Kind)
			require.Equal(t, []string{"instance", "job"}, rs[0].Refs.Metrics["up"].LabelNames())
			require.Equal(t, KindRecording, rs[1].Kind)
			require.Equal(t, "job:up:sum", rs[1].Name)
		})
	}
}

func FuzzParseFile(f *testing.F) {
	for _, p := range []string{"testdata/prometheusrule.yaml", "testdata/grafana-alerts.yaml"} {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, _ := ParseFile(data)
		for _, r := range rs {
			require.True(t, (r.Refs == nil) != (r.Err == nil))
		}
		_, _ = ParseGrafanaAlerts(data)
	})
}
