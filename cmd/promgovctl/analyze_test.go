package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/usage"
)

func TestUsageAnalyze(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d.json"), []byte(`{"uid": "d", "title": "D", "panels": [{"id": 1, "title": "P",
		"targets": [{"expr": "sum by (code) (rate(http_requests_total{job=\"web\"}[5m]))"}]}]}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("groups: [{name: g, rules: [{record: 'job:q:max', expr: 'max by (job) (queue_length)'}]}]\n"), 0o644))
	broken := filepath.Join(t.TempDir(), "broken.json")
	require.NoError(t, os.WriteFile(broken, []byte(`{"panels": [`), 0o644))

	tests := map[string]struct {
		args     []string
		code     int
		contains []string
	}{
		"table": {args: []string{"usage", "analyze", dir}, code: exitOK, contains: []string{
			"http_requests_total", "used", "1 dashboard", "code,job",
			"queue_length", "unused (only_unused_recording_rules)", "1 recording_rule",
			"3 metrics and 0 name patterns read by 1 dashboards and 1 rules (2 files, 2 expressions, 0 did not parse)",
		}},
		"a broken file fails after the rest is printed": {args: []string{"usage", "analyze", dir, broken}, code: exitFailed, contains: []string{"http_requests_total"}},
		"no paths":       {args: []string{"usage", "analyze"}, code: exitUsage},
		"unknown output": {args: []string{"usage", "analyze", "-o", "yaml", dir}, code: exitUsage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, tc.code, run(context.Background(), tc.args, &out, &errOut), "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			for _, s := range tc.contains {
				require.Contains(t, out.String(), s)
			}
			if tc.code == exitFailed {
				require.Contains(t, errOut.String(), "broken.json")
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(context.Background(), []string{"usage", "analyze", "-o", "json", dir}, &out, &errOut), errOut.String())
		var a usage.Analysis
		require.NoError(t, json.Unmarshal(out.Bytes(), &a))
		require.Len(t, a.Metrics, 3)
		require.Equal(t, "http_requests_total", a.Metrics[0].Name)
		require.Equal(t, []string{"code", "job"}, a.Metrics[0].ReadLabels)
	})
}
