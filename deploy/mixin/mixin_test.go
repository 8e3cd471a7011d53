package mixin

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesUpToDate fails when the committed files differ from
// what the Go definitions generate: run `go generate ./deploy/mixin`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files()
	require.NoError(t, err)
	for path, want := range files {
		got, err := os.ReadFile(path)
		require.NoError(t, err, "run go generate ./deploy/mixin")
		require.Equal(t, string(want), string(got), "%s is stale: run go generate ./deploy/mixin", path)
	}
}

func TestEveryExpressionParses(t *testing.T) {
	names, err := MetricNames()
	require.NoError(t, err)
	require.Contains(t, names, "promgov_forward_backoff_seconds")
	for n := range names {
		require.True(t, strings.HasPrefix(n, "promgov_"), "the mixin reads only promgov's own metrics, not %s", n)
	}
}

func TestEveryAlertHasARunbookSection(t *testing.T) {
	b, err := os.ReadFile("../../docs/runbook.md")
	require.NoError(t, err)
	for _, g := range Alerts().Groups {
		for _, r := range g.Rules {
			require.Contains(t, string(b), "\n## "+r.Alert+"\n", "docs/runbook.md needs a section for %s", r.Alert)
		}
	}
}

// promtool returns the promtool to run: PROMGOV_PROMTOOL, else promtool on
// PATH (Debian's prometheus package ships it). Without one the test skips,
// unless PROMGOV_REQUIRE_INTEGRATION is set.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMGOV_PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PROMGOV_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("promtool not found (set PROMGOV_PROMTOOL or install Debian's prometheus package): %v", err)
		}
		t.Skip("promtool not found: install Debian's prometheus package (make deps) or set PROMGOV_PROMTOOL")
	}
	return p
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", "alerts.yaml", "rules.yaml").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", "tests/alerts_test.yaml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SUCCESS")
	tests, err := os.ReadFile("tests/alerts_test.yaml")
	require.NoError(t, err)
	for _, g := range Alerts().Groups {
		for _, r := range g.Rules {
			require.Contains(t, string(tests), "alertname: "+r.Alert+"\n", "tests/alerts_test.yaml has no test of %s", r.Alert)
		}
	}
}
