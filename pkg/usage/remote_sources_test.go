package usage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRemoteSources(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("secret\n"), 0o600))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/search":
			_, _ = w.Write([]byte(`[{"uid":"d1","title":"D1","type":"dash-db"}]`))
		case "/api/dashboards/uid/d1":
			_, _ = w.Write([]byte(`{"meta":{},"dashboard":{"uid":"d1","title":"D1","panels":[{"id":1,"title":"P","targets":[{"expr":"grafana_api_metric"}]}]}}`))
		case "/prometheus/api/v1/rules":
			if r.Header.Get("X-Scope-OrgID") != "tenant-1" {
				http.Error(w, "no tenant", http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"status":"success","data":{"groups":[{"name":"g","rules":[{"type":"alerting","name":"A","query":"ruler_metric > 0"},{"type":"recording","name":"r:x","query":"sum(ruler_input)"}]}]}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tests := map[string]struct {
		src       Source
		want      []string
		wantErr   bool
		wantKinds []string
	}{
		"grafana api": {src: &GrafanaAPI{Config: GrafanaConfig{URL: srv.URL, TokenFile: tokenFile}, HTTPClient: srv.Client()},
			want: []string{"grafana_api_metric"}, wantKinds: []string{KindDashboard}},
		"grafana api without token":      {src: &GrafanaAPI{Config: GrafanaConfig{URL: srv.URL}, HTTPClient: srv.Client()}, wantErr: true},
		"grafana api missing token file": {src: &GrafanaAPI{Config: GrafanaConfig{URL: srv.URL, TokenFile: filepath.Join(dir, "nope")}}, wantErr: true},
		"mimir ruler": {src: &RulesAPI{Config: RulesAPIConfig{URL: srv.URL + "/prometheus", Tenant: "tenant-1", BearerTokenFile: tokenFile}, HTTPClient: srv.Client()},
			want: []string{"ruler_metric", "ruler_input"}, wantKinds: []string{KindAlert, KindRecordingRule}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := tc.src.Load(context.Background())
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var got, kinds []string
			for _, c := range res.Consumers {
				got = append(got, c.Refs.Names()...)
				kinds = append(kinds, c.Kind)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantKinds, kinds)
		})
	}
}
