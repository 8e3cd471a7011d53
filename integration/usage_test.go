package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// usageDashboard reads only usage_used_total.
const usageDashboard = `{
  "uid": "usage-test", "title": "Usage test",
  "panels": [{"type": "timeseries", "title": "Used",
    "datasource": {"type": "prometheus", "uid": "prom"},
    "targets": [{"expr": "sum by (job) (rate(usage_used_total[$__rate_interval]))"}]}]
}`

// startUsageCluster starts a backend, one ingester and a distributor whose
// usage section reads a dashboard file, taps queries to the backend and
// runs drop_unused in mode with a short grace period.
func startUsageCluster(t *testing.T, mode string) *cluster {
	t.Helper()
	return startUsageClusterWith(t, mode, usageDashboard)
}

// startUsageClusterWith is startUsageCluster with the dashboard file's content.
func startUsageClusterWith(t *testing.T, mode, dashboard string) *cluster {
	t.Helper()
	requireIntegration(t)
	dash := filepath.Join(t.TempDir(), "dashboard.json")
	require.NoError(t, os.WriteFile(dash, []byte(dashboard), 0o644))
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 1}
	n := &node{name: "distributor", webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
	n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"),
		"--web.listen-address="+n.webAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.node-name="+n.name,
		"--log.level=debug",
		"--usage.dashboards-path="+dash,
		"--usage.reload-interval=300ms",
		"--usage.ship-interval=200ms",
		"--query.backend-url=http://"+c.backend.addr,
		"--usage.drop-unused.mode="+mode,
		"--usage.drop-unused.grace-period=1s",
	)
	c.distributor = n
	c.addIngester()
	c.waitActive(1)
	return c
}

// usageMetric is one /promgov/api/v1/usage/metrics item.
type usageMetric struct {
	Name        string     `json:"name"`
	State       string     `json:"state"`
	Series      uint64     `json:"series"`
	QueryCount  uint64     `json:"query_count"`
	LastQueried *time.Time `json:"last_queried"`
}

func usageMetrics(t T, c *cluster, state string) map[string]usageMetric {
	t.Helper()
	var data []usageMetric
	v := url.Values{}
	if state != "" {
		v.Set("state", state)
	}
	apiGet(t, "http://"+c.distributor.webAddr, "/promgov/api/v1/usage/metrics", v, &data)
	out := map[string]usageMetric{}
	for _, m := range data {
		out[m.Name] = m
	}
	return out
}

// usagePolicy is the /promgov/api/v1/usage/policy answer.
type usagePolicy struct {
	Mode       string   `json:"mode"`
	Candidates []string `json:"candidates"`
	Blocked    bool     `json:"blocked"`
	Reason     string   `json:"reason"`
}

func getUsagePolicy(t T, c *cluster) usagePolicy {
	t.Helper()
	var st usagePolicy
	apiGet(t, "http://"+c.distributor.webAddr, "/promgov/api/v1/usage/policy", url.Values{}, &st)
	return st
}

// policyCandidates returns the drop policy's current candidates.
func policyCandidates(t T, c *cluster) []string {
	t.Helper()
	return getUsagePolicy(t, c).Candidates
}

func rawGet(t T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// writeUsagePhase writes one sample of the used and the unused metric with
// label phase, in one request (one ingester: one forwarded batch).
func writeUsagePhase(t *testing.T, c *cluster, phase string) {
	t.Helper()
	writeV1(t, c, time.Now(),
		[]string{"usage_used_total", "job", "app", "phase", phase},
		[]string{"usage_unused_total", "job", "app", "phase", phase})
}

func TestUsageQueryTap(t *testing.T) {
	t.Parallel()
	c := startUsageCluster(t, "off")
	writeUsagePhase(t, c, "before")
	waitSeries(t, c, `usage_used_total`, `{__name__="usage_used_total", job="app", phase="before"}`)

	// The tap answers exactly what the backend answers.
	q := url.Values{"query": {`usage_used_total`}, "time": {fmt.Sprint(time.Now().Unix())}}
	for _, path := range []string{"/api/v1/query", "/api/v1/labels", "/api/v1/label/job/values"} {
		codeB, bodyB := rawGet(t, "http://"+c.backend.addr+path+"?"+q.Encode())
		codeD, bodyD := rawGet(t, c.distributor.url(path+"?"+q.Encode()))
		require.Equal(t, http.StatusOK, codeB, bodyB)
		require.Equal(t, codeB, codeD, path)
		require.Equal(t, bodyB, bodyD, path)
	}
	req, err := http.NewRequest(http.MethodGet, c.distributor.url("/api/v1/query?"+q.Encode()), nil)
	require.NoError(t, err)
	req.Header.Set("X-Grafana-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	eventually(t, func(ct *assert.CollectT) bool {
		m, ok := usageMetrics(ct, c, "")["usage_used_total"]
		return ok && m.QueryCount >= 2 && m.LastQueried != nil && m.State == "used"
	}, 30*time.Second, 200*time.Millisecond, "usage_used_total never showed its queries")
	eventually(t, func(ct *assert.CollectT) bool {
		_, ok := usageMetrics(ct, c, "unused")["usage_unused_total"]
		return ok
	}, 30*time.Second, 200*time.Millisecond, "usage_unused_total never became unused")
	_, body := rawGet(t, c.distributor.url("/promgov/api/v1/usage/metrics?state=unused"))
	t.Logf("GET /promgov/api/v1/usage/metrics?state=unused: %s", body)
}

func TestUsageDropUnused(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"enforce", "shadow"} {
		t.Run(mode, func(t *testing.T) {
			c := startUsageCluster(t, mode)
			writeUsagePhase(t, c, "before")
			waitSeries(t, c, `{__name__=~"usage_.*",phase="before"}`,
				`{__name__="usage_used_total", job="app", phase="before"}`,
				`{__name__="usage_unused_total", job="app", phase="before"}`)

			// After the grace period the unused metric is a candidate; the
			// used one (read by the dashboard) never is.
			eventually(t, func(ct *assert.CollectT) bool {
				return slices.Contains(policyCandidates(ct, c), "usage_unused_total")
			}, 30*time.Second, 200*time.Millisecond, "usage_unused_total never became a drop candidate")
			require.NotContains(t, policyCandidates(t, c), "usage_used_total")

			writeUsagePhase(t, c, "after")
			if mode == "enforce" {
				// Both series travelled in one request to one ingester: once the
				// used one arrived, the unused one would have too.
				waitSeries(t, c, `{__name__=~"usage_.*",phase="after"}`,
					`{__name__="usage_used_total", job="app", phase="after"}`)
				require.Positive(t, metricSum(c.distributor.url("/metrics"), "promgov_distributor_usage_dropped_series_total"))
				return
			}
			waitSeries(t, c, `{__name__=~"usage_.*",phase="after"}`,
				`{__name__="usage_used_total", job="app", phase="after"}`,
				`{__name__="usage_unused_total", job="app", phase="after"}`)
			require.Zero(t, metricSum(c.distributor.url("/metrics"), "promgov_distributor_usage_dropped_series_total"))
		})
	}
}

// TestUsageDropUnusedFailSafe: a dashboard source that cannot be loaded
// blocks the policy, so an enforce-mode cluster drops nothing.
func TestUsageDropUnusedFailSafe(t *testing.T) {
	t.Parallel()
	c := startUsageClusterWith(t, "enforce", `{"panels": [`)
	writeUsagePhase(t, c, "before")
	waitSeries(t, c, `{__name__=~"usage_.*",phase="before"}`,
		`{__name__="usage_used_total", job="app", phase="before"}`,
		`{__name__="usage_unused_total", job="app", phase="before"}`)
	eventually(t, func(ct *assert.CollectT) bool {
		_, ok := usageMetrics(ct, c, "unused")["usage_unused_total"]
		st := getUsagePolicy(ct, c)
		return ok && st.Blocked && st.Reason == "source_unhealthy"
	}, 30*time.Second, 200*time.Millisecond, "the broken source never blocked the policy")
	require.Empty(t, policyCandidates(t, c))

	writeUsagePhase(t, c, "after")
	waitSeries(t, c, `{__name__=~"usage_.*",phase="after"}`,
		`{__name__="usage_used_total", job="app", phase="after"}`,
		`{__name__="usage_unused_total", job="app", phase="after"}`)
	require.Zero(t, metricSum(c.distributor.url("/metrics"), "promgov_distributor_usage_dropped_series_total"))
}
