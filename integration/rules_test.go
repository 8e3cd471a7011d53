package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rulesV1 drops debug_ metrics, renames legacy_ ones, normalises ids in
// paths and, in shadow mode, would drop everything without the acme_
// prefix.
const rulesV1 = `
distributor:
  push_timeout: 5s
rules:
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
  - name: rename-legacy
    relabel_configs:
      - source_labels: [__name__]
        regex: "legacy_(.*)"
        target_label: __name__
        replacement: "app_$1"
  - name: normalise-path-ids
    action: rewrite
    labels:
      normalize:
        - labels: [path]
          builtin: [uuid, number]
  - name: shadow-prefix
    mode: shadow
    action: drop
    naming:
      required_prefixes: [acme_]
`

// rulesV2 keeps debug_ metrics and drops legacy_ ones instead.
const rulesV2 = `
rules:
  - name: drop-legacy
    relabel_configs:
      - source_labels: [__name__]
        regex: "legacy_.*"
        action: drop
`

// startRulesCluster starts a backend, a distributor reading cfgPath and one
// ingester (one ingester forwards every series of a request in one batch,
// so "a marker arrived" proves the dropped series of the same request did
// not).
func startRulesCluster(t *testing.T, cfgPath string) *cluster {
	t.Helper()
	return startRulesClusterN(t, cfgPath, 1)
}

// startRulesClusterN is startRulesCluster with n ingesters.
func startRulesClusterN(t *testing.T, cfgPath string, ingesters int) *cluster {
	t.Helper()
	requireIntegration(t)
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 1}
	n := &node{name: "distributor", webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
	n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"),
		"--config.file="+cfgPath,
		"--web.listen-address="+n.webAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.node-name="+n.name,
		"--log.level=debug",
	)
	c.distributor = n
	for range ingesters {
		c.addIngester()
	}
	c.waitActive(ingesters)
	return c
}

// writeV1 sends series (name, then label pairs) with one sample each at ts
// as tenant team-a.
func writeV1(t *testing.T, c *cluster, ts time.Time, series ...[]string) {
	t.Helper()
	writeV1As(t, c, "team-a", ts, series...)
}

// writeV1As is writeV1 as tenant.
func writeV1As(t *testing.T, c *cluster, tenant string, ts time.Time, series ...[]string) {
	t.Helper()
	writeSeriesAs(t, c.writeURL(), tenant, ts, nil, series...)
}

// backendSeries returns the label sets the backend holds for a selector.
func backendSeries(t T, c *cluster, selector string) []string {
	t.Helper()
	var out []string
	for k := range c.backend.rawSamples(t, selector) {
		out = append(out, k)
	}
	return out
}

// waitSeries waits until the backend holds exactly want for selector.
func waitSeries(t *testing.T, c *cluster, selector string, want ...string) {
	t.Helper()
	var got []string
	eventually(t, func(ct *assert.CollectT) bool {
		got = backendSeries(ct, c, selector)
		return len(got) == len(want)
	}, 30*time.Second, 200*time.Millisecond, "backend never held %d series for %s", len(want), selector)
	require.ElementsMatch(t, want, got)
}

// distMetric returns the value of an exact series line of the distributor's
// /metrics (e.g. `promgov_config_last_reload_successful`), or -1.
func distMetric(t T, c *cluster, series string) float64 {
	t.Helper()
	resp, err := http.Get(c.distributor.url("/metrics"))
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			require.NoError(t, err)
			return v
		}
	}
	return -1
}

// rulesHash returns the hash of the active ruleset from GET /promgov/api/v1/rules.
func rulesHash(t T, c *cluster) string {
	t.Helper()
	var data struct {
		Hash  string `json:"hash"`
		Rules []struct {
			Name string `json:"name"`
		} `json:"rules"`
	}
	apiGet(t, "http://"+c.distributor.webAddr, "/promgov/api/v1/rules", nil, &data)
	require.NotEmpty(t, data.Hash)
	return data.Hash
}

func reloadAndWait(t *testing.T, c *cluster, wantOK float64) {
	t.Helper()
	require.NoError(t, c.distributor.proc.cmd.Process.Signal(syscall.SIGHUP))
	eventually(t, func(ct *assert.CollectT) bool {
		return distMetric(ct, c, "promgov_config_last_reload_successful") == wantOK
	}, 10*time.Second, 50*time.Millisecond, "promgov_config_last_reload_successful never became %v", wantOK)
}

func TestRulesEndToEnd(t *testing.T) {
	t.Parallel()
	cfgPath := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(rulesV1), 0o644))
	c := startRulesCluster(t, cfgPath)
	require.Equal(t, 1.0, distMetric(t, c, "promgov_config_last_reload_successful"))
	sel := `{__name__=~"debug_queue|legacy_requests_total|app_requests_total|http_hits_total"}`

	// 1. The rules change what reaches the backend: the drop, the rename and
	// the normalisation apply; the shadow rule changes nothing.
	writeV1(t, c, time.Now(),
		[]string{"debug_queue", "job", "worker"},
		[]string{"legacy_requests_total", "job", "api"},
		[]string{"http_hits_total", "path", "/users/123/orders/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c"},
	)
	waitSeries(t, c, sel,
		`{__name__="app_requests_total", job="api"}`,
		`{__name__="http_hits_total", path="/users/:id/orders/:uuid"}`,
	)
	// The shadow rule counted what it would have dropped (all 3 series
	// lack acme_; the debug one was dropped before it got there).
	require.Equal(t, 2.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="shadow",rule="shadow-prefix"}`))
	require.Equal(t, 1.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="enforce",rule="drop-debug"}`))

	// 2. "Why was my series dropped?"
	resp, err := http.Post(c.distributor.url("/promgov/api/v1/rules/test"), "application/json",
		strings.NewReader(`{"tenant":"team-a","series":[{"series":"debug_queue{job=\"worker\"}"}]}`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	t.Logf("trace of a dropped series: %s", body)
	var tr struct {
		Data struct {
			Results []struct {
				Action string `json:"action"`
				Rule   string `json:"rule"`
				Reason string `json:"reason"`
				Trace  []struct {
					Rule   string `json:"rule"`
					Effect string `json:"effect"`
				} `json:"trace"`
			} `json:"results"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &tr))
	require.Len(t, tr.Data.Results, 1)
	res := tr.Data.Results[0]
	require.Equal(t, "dropped", res.Action)
	require.Equal(t, "drop-debug", res.Rule)
	require.Contains(t, res.Reason, `matched regex "debug_.*"`)
	// A trace is not traffic: the drop rule's counter did not move.
	require.Equal(t, 1.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="enforce",rule="drop-debug"}`))
	require.NotEmpty(t, res.Trace)
	require.Equal(t, "drop-debug", res.Trace[len(res.Trace)-1].Rule)
	require.Equal(t, "dropped", res.Trace[len(res.Trace)-1].Effect)

	// 3. An invalid config is rejected: the old rules stay.
	oldHash := rulesHash(t, c)
	require.NoError(t, os.WriteFile(cfgPath, []byte("rules:\n  - name: broken\n    action: explode\n    labels: {forbidden: [x]}\n"), 0o644))
	reloadAndWait(t, c, 0)
	require.Equal(t, oldHash, rulesHash(t, c))
	resp, err = http.Post(c.distributor.url("/-/reload"), "", nil)
	require.NoError(t, err)
	body, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), `unknown action "explode"`)
	t2 := time.Now().Add(time.Second)
	writeV1(t, c, t2, []string{"debug_queue", "job", "worker"}, []string{"legacy_requests_total", "job", "api"})
	eventually(t, func(ct *assert.CollectT) bool {
		s := c.backend.rawSamples(ct, `app_requests_total`)[`{__name__="app_requests_total", job="api"}`]
		return len(s.Values) == 2
	}, 30*time.Second, 200*time.Millisecond, "second sample of the renamed series never arrived")
	require.Empty(t, backendSeries(t, c, `{__name__=~"debug_queue|legacy_requests_total"}`), "the old rules must still apply")

	// 4. A valid new config takes effect.
	require.NoError(t, os.WriteFile(cfgPath, []byte(rulesV2), 0o644))
	reloadAndWait(t, c, 1)
	require.NotEqual(t, oldHash, rulesHash(t, c))
	writeV1(t, c, t2.Add(time.Second), []string{"debug_queue", "job", "worker"}, []string{"legacy_requests_total", "job", "api"})
	waitSeries(t, c, `{__name__=~"debug_queue|legacy_requests_total"}`, `{__name__="debug_queue", job="worker"}`)
	// The removed rules' counters are gone from /metrics.
	require.Equal(t, -1.0, distMetric(t, c, `promgov_rule_series_total{action="drop",mode="enforce",rule="drop-debug"}`))
	require.Greater(t, distMetric(t, c, "promgov_config_last_reload_success_timestamp_seconds"), 0.0)

	// The outcomes are in the log: one summary per request, and both reloads.
	logs, err := os.ReadFile(c.distributor.proc.log)
	require.NoError(t, err)
	require.Contains(t, string(logs), `msg="governance rules applied"`)
	require.Contains(t, string(logs), `tenant=team-a series=3 dropped=1 changed=2 by_rule="drop-debug:dropped=1,changed=0 normalise-path-ids:dropped=0,changed=1 rename-legacy:dropped=0,changed=1"`)
	require.Contains(t, string(logs), `msg="configuration reload failed; the running configuration stays" component=distributor err="invalid configuration: rules[0] (\"broken\").action: unknown action \"explode\"`)
	require.Contains(t, string(logs), `msg="rules config reloaded" component=distributor rules=1`)
	// rulesV2 drops rulesV1's distributor.push_timeout: a restart applies it.
	require.Contains(t, string(logs), `msg="configuration change needs restart; the running value stays until then" component=distributor field=distributor.push_timeout`)
}
