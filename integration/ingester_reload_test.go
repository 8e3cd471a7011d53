package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// limitsConfig is an ingester config file with max_series_per_metric
// limit and the exemptions exempt (YAML flow list, e.g. `["exempt_.*"]`).
func limitsConfig(limit int, exempt, extra string) string {
	return fmt.Sprintf(`cardinality:
  limits:
    defaults:
      max_series_per_metric: %d
      max_series_per_metric_mode: enforce
    exempt: %s
%s`, limit, exempt, extra)
}

// TestIngesterReload: an ingester reloads its cardinality limits on SIGHUP
// and POST /-/reload, keeps serving and stays ACTIVE in the ring
// throughout; an invalid file changes nothing, and a change that needs a
// restart is logged as such.
//
//	writes ──► distributor ──► ingester (--config.file, SIGHUP) ──► Prometheus 3.16
func TestIngesterReload(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	cfgPath := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(limitsConfig(100, "[]", "")), 0o644))
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 2}
	c.distributor = c.startDistributor()
	ing := cardAddIngester(c, "--config.file="+cfgPath)
	c.waitActive(1)
	hdr := map[string]string{"X-Scope-OrgID": "team-r"}
	start := time.Now().Add(-5 * time.Minute)
	push := func(at time.Duration, metric string, from, to int) (int, string) {
		code, _, body := postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start.Add(at), metric, from, to), hdr)
		return code, body
	}
	lastReload := func() float64 {
		return metricSum(ing.url("/metrics"), "promgov_config_last_reload_success_timestamp_seconds")
	}
	requireServing := func(why string) {
		t.Helper()
		require.True(t, ing.proc.Running(), "the ingester exited %s: %v", why, ing.proc.exitErr())
		require.Equal(t, []string{ing.name}, c.activeIngesters(t), "the ingester left the ring %s", why)
		logs, err := os.ReadFile(ing.proc.log)
		require.NoError(t, err)
		require.NotContains(t, string(logs), "LEAVING", "the ingester started leaving %s", why)
	}

	// 30 series under the limit of 100.
	code, body := push(0, "reload_metric", 0, 30)
	require.Equal(t, http.StatusNoContent, code, body)
	require.Equal(t, 1.0, metricSum(ing.url("/metrics"), "promgov_config_last_reload_successful"))

	// Lower the limit to 20 and exempt exempt_.*; SIGHUP.
	before := lastReload()
	require.NoError(t, os.WriteFile(cfgPath, []byte(limitsConfig(20, `["exempt_.*"]`, "")), 0o644))
	require.NoError(t, ing.proc.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return lastReload() > before }, 30*time.Second, 50*time.Millisecond,
		"the ingester never reloaded on SIGHUP")
	requireServing("on SIGHUP")
	require.Equal(t, 1.0, metricSum(ing.url("/metrics"), "promgov_config_last_reload_successful"))

	// The new limit is enforced on new series; admitted ones keep flowing.
	code, body = push(time.Minute, "reload_metric", 30, 35)
	require.Equal(t, http.StatusBadRequest, code, "new series over the reloaded limit: %s", body)
	require.Contains(t, body, "max_series_per_metric=20")
	code, body = push(time.Minute, "reload_metric", 0, 30)
	require.Equal(t, http.StatusNoContent, code, "admitted series keep flowing: %s", body)
	// The new exemption applies.
	code, body = push(time.Minute, "exempt_metric", 0, 40)
	require.Equal(t, http.StatusNoContent, code, "an exempt metric is never limited: %s", body)

	// An invalid file is refused and changes nothing.
	require.NoError(t, os.WriteFile(cfgPath, []byte(limitsConfig(-1, "[]", "")), 0o644))
	require.NoError(t, ing.proc.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return metricSum(ing.url("/metrics"), "promgov_config_last_reload_successful") == 0
	}, 30*time.Second, 50*time.Millisecond, "the invalid file was not refused")
	requireServing("on an invalid SIGHUP")
	code, body = push(2*time.Minute, "exempt_metric", 40, 50)
	require.Equal(t, http.StatusNoContent, code, "the previous limits (and exemption) stay: %s", body)
	resp, err := http.Post(ing.url("/-/reload"), "", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), "max_series_per_metric")

	// POST /-/reload: a higher limit, and a WAL setting that needs a restart.
	require.NoError(t, os.WriteFile(cfgPath, []byte(limitsConfig(40, "[]", "wal:\n  sync_policy: always\n")), 0o644))
	resp, err = http.Post(ing.url("/-/reload"), "", nil)
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	requireServing("on POST /-/reload")
	code, body = push(3*time.Minute, "reload_metric", 30, 35)
	require.Equal(t, http.StatusNoContent, code, "5 more series fit under 40: %s", body)
	code, body = push(3*time.Minute, "reload_metric", 35, 50)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "max_series_per_metric=40")
	logs, err := os.ReadFile(ing.proc.log)
	require.NoError(t, err)
	require.Contains(t, string(logs), `msg="configuration change needs restart; the running value stays until then" component=ingester field=wal.sync_policy`)
	require.Contains(t, string(logs), `msg="configuration reload failed; the running configuration stays"`)
}
