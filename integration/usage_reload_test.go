package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// usageConfig is a shared config file whose usage section reads dash and
// runs drop_unused in mode.
func usageConfig(dash, mode string) string {
	return fmt.Sprintf(`usage:
  reload_interval: 300ms
  dashboards:
    paths: [%q]
  drop_unused:
    mode: %s
    grace_period: 1s
`, dash, mode)
}

// TestUsageReload: the usage section is reloaded with SIGHUP like the rules.
//
//	writes ──► distributor (--config.file, SIGHUP) ──► ingester ──► Prometheus 3.16
//
// The policy starts in shadow mode: the unused metric is a candidate and
// still arrives. The file is switched to enforce and the distributor gets
// SIGHUP: the next write's unused series is dropped, without a restart. An
// invalid file is then refused and enforce stays.
func TestUsageReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dash := filepath.Join(dir, "dashboard.json")
	require.NoError(t, os.WriteFile(dash, []byte(usageDashboard), 0o644))
	cfgPath := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(usageConfig(dash, "shadow")), 0o644))
	c := startRulesCluster(t, cfgPath)

	writeUsagePhase(t, c, "before")
	waitSeries(t, c, `{__name__=~"usage_.*",phase="before"}`,
		`{__name__="usage_used_total", job="app", phase="before"}`,
		`{__name__="usage_unused_total", job="app", phase="before"}`)
	eventually(t, func(ct *assert.CollectT) bool {
		return slices.Contains(policyCandidates(ct, c), "usage_unused_total")
	}, 30*time.Second, 200*time.Millisecond, "usage_unused_total never became a candidate")
	require.Equal(t, "shadow", getUsagePolicy(t, c).Mode)

	require.NoError(t, os.WriteFile(cfgPath, []byte(usageConfig(dash, "enforce")), 0o644))
	require.NoError(t, c.distributor.proc.cmd.Process.Signal(syscall.SIGHUP))
	eventually(t, func(ct *assert.CollectT) bool {
		st := getUsagePolicy(ct, c)
		return st.Mode == "enforce" && slices.Contains(st.Candidates, "usage_unused_total")
	}, 30*time.Second, 200*time.Millisecond, "the reload never switched the policy to enforce")

	writeUsagePhase(t, c, "after")
	waitSeries(t, c, `{__name__=~"usage_.*",phase="after"}`,
		`{__name__="usage_used_total", job="app", phase="after"}`)
	require.Positive(t, metricSum(c.distributor.url("/metrics"), "promgov_distributor_usage_dropped_series_total"))

	require.NoError(t, os.WriteFile(cfgPath, []byte(usageConfig(dash, "sometimes")), 0o644))
	require.NoError(t, c.distributor.proc.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return metricSum(c.distributor.url("/metrics"), "promgov_config_last_reload_successful") == 0
	}, 30*time.Second, 200*time.Millisecond, "the invalid file was not refused")
	require.Equal(t, "enforce", getUsagePolicy(t, c).Mode, "an invalid file keeps the old config")
}
