package usage

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestManagerRunReloadsUntilCancelled(t *testing.T) {
	src := &fakeSource{name: "s", consumers: scenarioConsumers(t)}
	cfg := DefaultConfig()
	cfg.ReloadInterval = 10 * time.Millisecond
	m, err := NewManager(cfg, Deps{Sources: []Source{src}, Access: NewAccessStats(10, 10), Costs: scenarioCosts(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	require.Eventually(t, func() bool { return src.loadCount() >= 3 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.NotNil(t, m.Report())
	st := m.Sources()
	require.Len(t, st, 1)
	require.True(t, st[0].Healthy)
	require.Equal(t, 4, st[0].Consumers)
	require.NotNil(t, st[0].LastSuccess)
}

func TestManagerFileSources(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d.json"), []byte(`{"uid": "d", "title": "D", "panels": [{"id": 1, "title": "P", "targets": [{"expr": "sum by (job) (rate(dash_total[5m]))"}]}]}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: alert_metric > 0\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "galerts.yaml"), []byte("apiVersion: 1\ngroups:\n- name: g\n  folder: f\n  rules:\n  - uid: u\n    title: T\n    data:\n    - refId: A\n      datasourceUid: p\n      model: {expr: grafana_alert_metric}\n"), 0o600))
	qlog := filepath.Join(dir, "query.log")
	require.NoError(t, os.WriteFile(qlog, []byte(`{"params":{"query":"logged_metric"},"ts":"2026-01-01T00:00:00Z"}`+"\n"+`{"params":{"query":"sum(("},"ts":"2026-01-01T00:00:00Z"}`+"\n"), 0o600))

	cfg := DefaultConfig()
	cfg.Dashboards.Paths = []string{filepath.Join(dir, "d.json")}
	cfg.Rules.Paths = []string{filepath.Join(dir, "rules.yaml")}
	cfg.Rules.GrafanaAlertPaths = []string{filepath.Join(dir, "galerts.yaml")}
	cfg.Queries.LogFiles = []string{qlog}
	access := NewAccessStats(10, 10)
	costs := StaticCosts{{Name: "dash_total"}, {Name: "alert_metric"}, {Name: "grafana_alert_metric"}, {Name: "logged_metric"}, {Name: "nobody"}}
	m, err := NewManager(cfg, Deps{Sources: SourcesFromConfig(cfg, access, "anonymous"), Access: access, Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	m.Refresh(context.Background())
	for _, st := range m.Sources() {
		require.True(t, st.Healthy, "%s: %s", st.Kind, st.LastError)
	}
	states := map[string]State{}
	usedBy := map[string]string{}
	for _, r := range m.Report().Metrics {
		states[r.Name] = r.State
		if len(r.UsedBy) > 0 {
			usedBy[r.Name] = r.UsedBy[0].Kind + " " + r.UsedBy[0].Title
		}
	}
	require.Equal(t, map[string]State{"dash_total": StateUsed, "alert_metric": StateUsed, "grafana_alert_metric": StateUsed, "logged_metric": StateUsed, "nobody": StateUnused}, states)
	require.Equal(t, map[string]string{
		"dash_total": "dashboard D › P", "alert_metric": "alert A", "grafana_alert_metric": "grafana_alert u A", "logged_metric": "query ad-hoc and API queries",
	}, usedBy)
	kinds := map[string]int{}
	for _, st := range m.Sources() {
		kinds[st.Kind] = st.Items
		if st.Kind == "query_log" {
			require.Equal(t, 1, st.Unparsed)
		}
	}
	require.Equal(t, map[string]int{"dashboards_files": 1, "rule_files": 1, "grafana_alert_files": 1, "query_log": 2}, kinds)

	// A missing file makes its source unhealthy.
	require.NoError(t, os.Remove(filepath.Join(dir, "rules.yaml")))
	m.Refresh(context.Background())
	for _, st := range m.Sources() {
		if st.Kind == "rule_files" {
			require.False(t, st.Healthy)
			require.NotEmpty(t, st.LastError)
		}
	}
}

func TestConfig(t *testing.T) {
	tests := map[string]struct {
		mutate  func(c *Config)
		wantErr string
	}{
		"defaults":              {mutate: func(*Config) {}},
		"bad mode":              {mutate: func(c *Config) { c.DropUnused.Mode = "drop" }, wantErr: "usage.drop_unused.mode"},
		"enforce without grace": {mutate: func(c *Config) { c.DropUnused.Mode, c.DropUnused.GracePeriod = ModeEnforce, 0 }, wantErr: "usage.drop_unused.grace_period"},
		"bad allow regex":       {mutate: func(c *Config) { c.DropUnused.Allow = []string{"("} }, wantErr: "usage.drop_unused.allow[0]"},
		"bad grafana url":       {mutate: func(c *Config) { c.Dashboards.Grafana = []GrafanaConfig{{URL: "grafana:3000"}} }, wantErr: "usage.dashboards.grafana[0].url"},
		"bad rules api url":     {mutate: func(c *Config) { c.Rules.APIs = []RulesAPIConfig{{URL: "/x"}} }, wantErr: "usage.rules.apis[0].url"},
		"bad backend url":       {mutate: func(c *Config) { c.Queries.BackendURL = "prom:9090" }, wantErr: "usage.queries.backend_url"},
		"zero interval":         {mutate: func(c *Config) { c.ReloadInterval = 0 }, wantErr: "usage.reload_interval"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestConfigFlagsAndYAML(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags("", fs)
	require.NoError(t, fs.Parse([]string{
		"-usage.dashboards-path=/a,/b", "-usage.dashboards-path=/c", "-query.backend-url=http://prom:9090",
		"-usage.drop-unused.mode=shadow", "-usage.drop-unused.grace-period=48h",
	}))
	require.Equal(t, []string{"/a", "/b", "/c"}, c.Dashboards.Paths)
	require.Equal(t, "http://prom:9090", c.Queries.BackendURL)
	require.Equal(t, ModeShadow, c.DropUnused.Mode)
	require.Equal(t, 48*time.Hour, c.DropUnused.GracePeriod)
	require.Equal(t, 5*time.Minute, c.ReloadInterval, "defaults survive")
	require.NoError(t, c.Validate())

	y := DefaultConfig()
	require.NoError(t, yaml.Unmarshal([]byte(`
reload_interval: 1m
dashboards:
  grafana: [{url: "http://grafana:3000", token_file: /t}]
rules:
  apis: [{url: "http://mimir/prometheus", tenant: a}]
drop_unused: {mode: enforce, grace_period: 720h, deny: ["up"]}
`), &y))
	require.NoError(t, y.Validate())
	require.Equal(t, "a", y.Rules.APIs[0].Tenant)
	require.Equal(t, 720*time.Hour, y.DropUnused.GracePeriod)
}
