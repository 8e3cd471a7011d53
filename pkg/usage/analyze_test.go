package usage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/datasets"
)

func metricByName(t *testing.T, a *Analysis, name string) AnalyzedMetric {
	t.Helper()
	for _, m := range a.Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("metric %s not in the analysis", name)
	return AnalyzedMetric{}
}

// TestAnalyzePathsRecordingGraph: a dashboard reads one recording rule's
// output; another recording rule's output is read by nobody, so its input
// is unused for that reason; files are told apart by content.
func TestAnalyzePathsRecordingGraph(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	write("dash/web.json", `{"uid": "web", "title": "Web", "panels": [{"id": 1, "title": "RPS",
		"targets": [{"expr": "sum by (code) (job:http_requests:rate5m{env=\"prod\"})"}, {"expr": "{__name__=~\"go_.*\"}"}]}]}`)
	write("rules/web.yml", `groups:
- name: web
  rules:
  - record: job:http_requests:rate5m
    expr: sum by (job, code, env) (rate(http_requests_total[5m]))
  - record: job:queue:max
    expr: max by (job) (queue_length)
  - alert: Down
    expr: up{job="web"} == 0
`)
	write("notes.txt", "not read: not a dashboard or rule extension")

	a, err := AnalyzePaths([]string{dir})
	require.NoError(t, err)
	require.Equal(t, 2, a.Files)
	require.Equal(t, 1, a.Dashboards)
	require.Equal(t, 3, a.Rules)
	require.Equal(t, 5, a.Expressions)
	require.Zero(t, a.ParseErrors)

	rec := metricByName(t, a, "job:http_requests:rate5m")
	require.Equal(t, StateUsed, rec.State)
	require.Equal(t, []string{"code", "env"}, rec.ReadLabels)
	require.Equal(t, []UsedBy{{Kind: KindDashboard, ID: "web", Title: "Web › RPS"}}, rec.UsedBy)

	in := metricByName(t, a, "http_requests_total")
	require.Equal(t, StateUsed, in.State, "read by a live recording rule")
	require.Equal(t, []string{"code", "env", "job"}, in.ReadLabels)

	dead := metricByName(t, a, "queue_length")
	require.Equal(t, StateUnused, dead.State)
	require.Equal(t, ReasonDeadRecordingRules, dead.Reason)
	require.Equal(t, ReasonNoReaders, metricByName(t, a, "job:queue:max").Reason)

	up := metricByName(t, a, "up")
	require.Equal(t, StateUsed, up.State)
	require.True(t, up.AllLabels, "an alert on a bare selector sees every label")

	require.Len(t, a.Patterns, 1)
	require.Equal(t, "go_.*", a.Patterns[0].Regex)
}

// TestAnalyzePathsBadFileKeepsTheRest: an undecodable file is reported by
// name and the other files still count.
func TestAnalyzePathsBadFileKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"panels": [`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("groups: [\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.yml"), []byte("groups: 5\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte("groups: [{name: g, rules: [{alert: A, expr: 'bad_sum( > 1'}, {alert: B, expr: ok_metric > 1}]}]\n"), 0o644))
	a, err := AnalyzePaths([]string{dir, filepath.Join(dir, "missing")})
	require.Error(t, err)
	require.ErrorContains(t, err, "broken.json")
	require.ErrorContains(t, err, "broken.yaml: decode yaml")
	require.ErrorContains(t, err, "other.yml: neither a dashboard nor a rule file")
	require.ErrorContains(t, err, "missing")
	require.Equal(t, 1, a.ParseErrors)
	require.Len(t, a.SampleErrors, 1)
	require.Equal(t, StateUsed, metricByName(t, a, "ok_metric").State)
}

// TestAnalyzePathsMixin reads a real mixin folder (dashboards and rules
// side by side).
func TestAnalyzePathsMixin(t *testing.T) {
	dir := filepath.Join(datasets.MixinsDir(t), "alertmanager")
	a, err := AnalyzePaths([]string{dir})
	require.NoError(t, err)
	require.Positive(t, a.Dashboards)
	require.Positive(t, a.Rules)
	require.Zero(t, a.ParseErrors)
	m := metricByName(t, a, "alertmanager_alerts")
	require.Equal(t, StateUsed, m.State)
	require.Equal(t, []string{"instance", "job"}, m.ReadLabels)
	// Read by an alert and a dashboard.
	kinds := map[string]bool{}
	for _, u := range metricByName(t, a, "alertmanager_notifications_total").UsedBy {
		kinds[u.Kind] = true
	}
	require.True(t, kinds[KindDashboard] && kinds[KindAlert], "%v", kinds)
}
