package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The governed cluster the UI and mixin tests look at: what a person
// checks on the UI is set up here with real traffic.
const (
	uiTenant = "team-a"
	// uiExploding has the most series, over its max_series_per_metric
	// limit, so some are refused.
	uiExploding = "checkout_requests_exploding_total"
	uiLimit     = 60
	// uiUsed is read by the dashboard the usage section loads, uiUnused by
	// nothing.
	uiUsed   = "ui_used_total"
	uiUnused = "ui_unused_total"
	// uiDropped is dropped by the drop-debug rule.
	uiDropped = "debug_queue_depth"
	// uiHostile carries a label value that is HTML.
	uiHostile     = "hostile_metric"
	uiHostileHTML = `<script>window.__pwned=1</script><b>bold</b>`
	// uiHostileName is a metric name (UTF-8 names are valid) that is HTML.
	uiHostileName = `evil_<img src=x onerror="window.__pwned=2">`
)

const uiRules = `
rules:
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
  - name: shadow-prefix
    mode: shadow
    action: warn
    naming:
      required_prefixes: [acme_]
`

const uiDashboard = `{
  "uid": "ui-test", "title": "UI test",
  "panels": [{"type": "timeseries", "title": "Used",
    "datasource": {"type": "prometheus", "uid": "prom"},
    "targets": [{"expr": "sum by (job) (rate(ui_used_total[$__rate_interval]))"}]}]
}`

// startUICluster starts a backend, a distributor (rules, a usage dashboard,
// the query tap, the drop policy in shadow mode) and two ingesters with a
// max_series_per_metric limit, and writes the traffic the UI tests look
// at: an exploding metric over its limit, a used and an unused metric, a
// dropped debug metric, a series with a label value that is HTML, a metric
// whose name is HTML, a
// series with unsorted labels and a sample too old for the backend.
func startUICluster(t *testing.T) *cluster {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(uiRules), 0o644))
	dash := filepath.Join(dir, "dashboard.json")
	require.NoError(t, os.WriteFile(dash, []byte(uiDashboard), 0o644))

	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 2}
	n := &node{name: "distributor", webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
	n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"),
		"--config.file="+cfg,
		"--web.listen-address="+n.webAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.node-name="+n.name,
		"--distributor.push-timeout=5s",
		"--usage.dashboards-path="+dash,
		"--usage.reload-interval=300ms",
		"--usage.ship-interval=200ms",
		"--query.backend-url=http://"+c.backend.addr,
		"--usage.drop-unused.mode=shadow",
		"--usage.drop-unused.grace-period=1s",
		"--ui.history-interval=1s",
		"--ui.snapshot-interval=1s",
	)
	c.distributor = n
	extra := []string{
		"--cardinality.limits.max-series-per-metric=" + strconv.Itoa(uiLimit),
		"--cluster.sync-interval=500ms",
		"--cluster.handoff-settle=1s",
		"--ui.history-interval=1s",
		"--ui.snapshot-interval=1s",
	}
	cardAddIngester(c, extra...)
	cardAddIngester(c, extra...)
	c.waitActive(2)
	writeUITraffic(t, c)
	return c
}

// writeUITraffic writes the traffic startUICluster describes.
func writeUITraffic(t *testing.T, c *cluster) {
	t.Helper()
	hdr := map[string]string{"X-Scope-OrgID": uiTenant}
	now := time.Now()
	// The exploding metric: uiLimit series, then more, of which the ones
	// past the limit are refused (400 naming the limit).
	code, _, body := postRW(t, c.writeURL(), contentTypeV2, cardBody(t, now.Add(-2*time.Minute), uiExploding, 0, uiLimit-5), hdr)
	require.Equal(t, http.StatusNoContent, code, body)
	code, _, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, now.Add(-time.Minute), uiExploding, 0, uiLimit+40), hdr)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "max_series_per_metric")
	code, _, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, now.Add(-time.Minute), "calm_metric", 0, 5), hdr)
	require.Equal(t, http.StatusNoContent, code, body)

	writeV1As(t, c, uiTenant, now,
		[]string{uiUsed, "job", "app"},
		[]string{uiUnused, "job", "app"},
		[]string{uiDropped, "job", "worker"},
		[]string{uiHostile, "job", "web", "path", uiHostileHTML},
		[]string{uiHostile, "job", "web", "path", "/index.html"},
		[]string{uiHostileName, "job", "web"},
	)
	// Unsorted label names: sorted and counted by the distributor.
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "unsorted_metric"}, {Name: "z", Value: "1"}, {Name: "a", Value: "2"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}},
	}}}
	b, err := req.Marshal()
	require.NoError(t, err)
	code, _, body = postRW(t, c.writeURL(), contentTypeV1, snappy.Encode(nil, b), hdr)
	require.Equal(t, http.StatusNoContent, code, body)
	// A sample two days old: the backend refuses it (out of bounds) and the
	// forwarder drops it (promgov_forward_dropped_samples_total).
	writeV1As(t, c, uiTenant, now.Add(-48*time.Hour), []string{"too_old_metric", "job", "app"})

	// Wait until the backend has the used metric, so the usage
	// classification can see it.
	eventually(t, func(ct *assert.CollectT) bool {
		return len(c.backend.rawSamples(ct, `{__name__="`+uiUsed+`"}`)) == 1
	}, 20*time.Second, 100*time.Millisecond, "the backend never got %s", uiUsed)
}
