package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pmodel "github.com/prometheus/common/model"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/ring"
)

// cardLimit is the max_series_per_metric the cardinality test runs with.
const cardLimit = 50

// cardAddIngester starts one more ingester like cluster.addIngester, with
// extra flags and a cardinality snapshot next to its WAL.
func cardAddIngester(c *cluster, extra ...string) *node {
	c.t.Helper()
	c.seq++
	dir := c.t.TempDir()
	n := &node{
		name:       fmt.Sprintf("ingester-%d", c.seq),
		webAddr:    freeAddr(c.t),
		gossipAddr: freeAddr(c.t),
		grpcAddr:   freeAddr(c.t),
		walDir:     filepath.Join(dir, "wal"),
	}
	cardStartIngester(c, n, extra...)
	c.ingesters = append(c.ingesters, n)
	return n
}

// cardStartIngester (re)starts n on its addresses and directories.
func cardStartIngester(c *cluster, n *node, extra ...string) {
	c.t.Helper()
	args := append([]string{
		"--web.listen-address=" + n.webAddr,
		"--grpc.listen-address=" + n.grpcAddr,
		"--memberlist.bind-address=" + n.gossipAddr,
		"--memberlist.join=" + c.distributor.gossipAddr,
		"--memberlist.node-name=" + n.name,
		"--wal.dir=" + n.walDir,
		"--backend.url=" + c.backend.writeURL(),
		"--backend.protocol=" + strconv.Itoa(c.backendProtocol),
		"--forward.batch-send-deadline=200ms",
		"--ingester.leave-drain-period=2s",
		"--cardinality.snapshot-path=" + filepath.Join(filepath.Dir(n.walDir), "cardinality.snapshot"),
		"--log.level=debug",
	}, extra...)
	n.proc = startProcess(c.t, n.name, filepath.Join(binDir, "ingester"), args...)
	waitReady(c.t, n.proc, n.url("/-/ready"))
}

// cardBody is a snappy RW 2.0 request with one sample at ts for each of
// the series id=from..to-1 of metric.
func cardBody(t *testing.T, ts time.Time, metric string, from, to int) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for i := from; i < to; i++ {
		ls := labels.FromStrings(pmodel.MetricNameLabel, metric, "id", strconv.Itoa(i), "job", "cardinality-test")
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: ts.UnixMilli()}},
		})
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// cardGet fetches a cardinality API answer: the raw body and the decoded
// rows.
func cardGet(t T, url string) (string, []map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, b)
	var env struct {
		Status string           `json:"status"`
		Data   []map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, "success", env.Status)
	return strings.TrimSpace(string(b)), env.Data
}

func movingMetric(t *testing.T, tenant string) string {
	t.Helper()
	cfg := ring.DefaultConfig()
	pc := ring.PlacementConfig{PartitionCount: cfg.PartitionCount, ReplicationFactor: cfg.ReplicationFactor, Load: cfg.Load}
	member := func(i int) ring.Member {
		return ring.Member{Name: fmt.Sprintf("ingester-%d", i), Role: ring.RoleIngester, State: ring.StateActive}
	}
	two, err := ring.NewPlacement(pc, []ring.Member{member(1), member(2)})
	require.NoError(t, err)
	three, err := ring.NewPlacement(pc, []ring.Member{member(1), member(2), member(3)})
	require.NoError(t, err)
	for i := range 1000 {
		name := fmt.Sprintf("exploding_metric_%d", i)
		key := ring.Key(nil, tenant, name)
		before, _ := two.Owner(key)
		after, _ := three.Owner(key)
		if after.Name == "ingester-3" && before.Name != "ingester-3" {
			return name
		}
	}
	t.Fatal("no metric name moves to ingester-3")
	return ""
}

// TestCardinalityLimitsEndToEnd pushes one metric past max_series_per_metric
// through a real cluster with a real Prometheus: the admitted series keep
// flowing, new ones are answered 400 naming the limit, the metric and the
// tenant, the backend holds exactly the admitted series, the distributor's
// API shows the offender, and after an ingester joins (the metric moves to
// it) the limit still holds.
func TestCardinalityLimitsEndToEnd(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	const tenant = "team-a"
	metric := movingMetric(t, tenant)
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 2}
	c.distributor = c.startDistributor()
	extra := []string{
		"--cardinality.limits.max-series-per-metric=" + strconv.Itoa(cardLimit),
		"--cluster.sync-interval=500ms",
		"--cluster.handoff-settle=1s",
	}
	cardAddIngester(c, extra...)
	cardAddIngester(c, extra...)
	c.waitActive(2)
	hdr := map[string]string{"X-Scope-OrgID": tenant}
	written := func(h http.Header) string { return h.Get("X-Prometheus-Remote-Write-Samples-Written") }
	start := time.Now().Add(-5 * time.Minute)

	// Below the limit: everything is written.
	code, h, body := postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start, metric, 0, 40), hdr)
	require.Equal(t, http.StatusNoContent, code, body)
	require.Equal(t, "40", written(h))
	code, _, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start, "calm_metric", 0, 10), hdr)
	require.Equal(t, http.StatusNoContent, code, body)

	// Past the limit: 40 existing + 30 new series; 10 new fit, 20 are refused.
	code, h, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start.Add(time.Minute), metric, 0, 70), hdr)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, fmt.Sprintf("max_series_per_metric=%d", cardLimit))
	require.Contains(t, body, strconv.Quote(metric))
	require.Contains(t, body, strconv.Quote(tenant))
	require.Equal(t, strconv.Itoa(cardLimit), written(h), "Written counts only the admitted series")
	t.Logf("refusal answered to the sender: %d %s", code, strings.TrimSpace(body))

	// Admitted series keep flowing.
	code, h, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start.Add(2*time.Minute), metric, 0, cardLimit), hdr)
	require.Equal(t, http.StatusNoContent, code, body)
	require.Equal(t, strconv.Itoa(cardLimit), written(h))

	// The backend has exactly the admitted series, the first 40 with three
	// samples each.
	var got map[string]rangeSeries
	eventually(t, func(ct *assert.CollectT) bool {
		got = c.backend.rawSamples(ct, metric)
		return len(got) == cardLimit && samplesIn(got) == 40*3+10*2
	}, 30*time.Second, 200*time.Millisecond, "backend has %v series", lazy(func() any { return len(got) }))
	for _, s := range got {
		id, err := strconv.Atoi(s.Metric["id"])
		require.NoError(t, err)
		require.Less(t, id, cardLimit, "a refused series reached the backend")
	}

	// The distributor's API shows the offender, merged over both ingesters.
	api := c.distributor.url("/promgov/api/v1/cardinality")
	raw, rows := cardGet(t, api+"/metrics?tenant="+tenant+"&sort=refused&limit=2")
	t.Logf("GET /promgov/api/v1/cardinality/metrics?tenant=%s&sort=refused&limit=2\n%s", tenant, raw)
	require.Len(t, rows, 2)
	require.Equal(t, metric, rows[0]["name"])
	require.EqualValues(t, 70, rows[0]["series"], "series shows the demand, refused attempts included")
	require.EqualValues(t, 20, rows[0]["refused_series"])
	require.EqualValues(t, cardLimit, rows[0]["limit"])
	require.Equal(t, "calm_metric", rows[1]["name"])
	require.EqualValues(t, 0, rows[1]["refused_series"])

	raw, rows = cardGet(t, api+"/metrics/"+metric+"?tenant="+tenant)
	t.Logf("GET /promgov/api/v1/cardinality/metrics/%s?tenant=%s\n%s", metric, tenant, raw)
	require.Len(t, rows, 1)
	labelsAnswer := rows[0]["labels"].([]any)
	require.Equal(t, "id", labelsAnswer[0].(map[string]any)["name"], "the exploding label comes first")
	require.EqualValues(t, 70, labelsAnswer[0].(map[string]any)["values"])

	raw, rows = cardGet(t, api+"/tenants")
	t.Logf("GET /promgov/api/v1/cardinality/tenants\n%s", raw)
	require.Len(t, rows, 1)
	require.Equal(t, tenant, rows[0]["tenant"])
	require.EqualValues(t, 80, rows[0]["series"])
	require.EqualValues(t, 20, rows[0]["refused_series"])

	// Ring change: ingester-3 joins and the metric moves to it. Once it has
	// pulled the metric's state, the limit still holds there.
	third := cardAddIngester(c, extra...)
	c.waitActive(3)
	eventually(t, func(ct *assert.CollectT) bool {
		for _, m := range c.ring(ct, c.distributor) {
			if m.Name == third.name {
				return m.Share > 0
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the distributor never placed partitions on %s", third.name)
	require.Eventually(t, func() bool {
		return metricSum(third.url("/metrics"), `promgov_cluster_handoff_metrics_total{result="success"}`) >= 1
	}, 30*time.Second, 100*time.Millisecond, "ingester-3 never pulled moved state")
	raw, rows = cardGet(t, third.url("/promgov/api/v1/cardinality/metrics/"+metric+"?tenant="+tenant))
	t.Logf("ingester-3 after the handoff: %s", raw)
	require.EqualValues(t, 70, rows[0]["series"])
	require.EqualValues(t, 20, rows[0]["refused_series"])

	code, h, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start.Add(3*time.Minute), metric, 100, 110), hdr)
	require.Equal(t, http.StatusBadRequest, code, "new series are still refused after the ring change: %s", body)
	require.Contains(t, body, fmt.Sprintf("max_series_per_metric=%d", cardLimit))
	require.Equal(t, "0", written(h))
	code, h, body = postRW(t, c.writeURL(), contentTypeV2, cardBody(t, start.Add(3*time.Minute), metric, 0, cardLimit), hdr)
	require.Equal(t, http.StatusNoContent, code, "admitted series still flow after the ring change: %s", body)
	require.Equal(t, strconv.Itoa(cardLimit), written(h))
	eventually(t, func(ct *assert.CollectT) bool {
		got = c.backend.rawSamples(ct, metric)
		return len(got) == cardLimit && samplesIn(got) == 40*4+10*3
	}, 30*time.Second, 200*time.Millisecond, "backend has %v series", lazy(func() any { return len(got) }))

	// The cluster-wide answer did not double count across the two owners.
	_, rows = cardGet(t, api+"/metrics?tenant="+tenant+"&sort=refused&limit=1")
	require.EqualValues(t, 70+10, rows[0]["series"])
	require.EqualValues(t, 20+10, rows[0]["refused_series"])
}

// cardTracks reports whether the ingester's own API tracks metric.
func cardTracks(t T, n *node, tenant, metric string) bool {
	t.Helper()
	resp, err := http.Get(n.url("/promgov/api/v1/cardinality/metrics/" + metric + "?tenant=" + tenant))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// TestCardinalityStateSurvivesRestartAndScaleDown: a metric at its limit
// keeps its limit (a) when its ingester restarts alone (snapshot on
// shutdown, restore on start) and (b) when its ingester leaves a cluster of
// two (the survivor pulls the state while the leaver drains).
func TestCardinalityStateSurvivesRestartAndScaleDown(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	const tenant, metric = "team-b", "restart_metric"
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 2}
	c.distributor = c.startDistributor()
	extra := []string{
		"--cardinality.limits.max-series-per-metric=" + strconv.Itoa(cardLimit),
		"--cluster.sync-interval=500ms",
		"--cluster.handoff-settle=1s",
	}
	first := cardAddIngester(c, extra...)
	c.waitActive(1)
	hdr := map[string]string{"X-Scope-OrgID": tenant}
	start := time.Now().Add(-5 * time.Minute)
	// push retries while the distributor answers 503: its connection to a
	// restarted ingester may still be in gRPC's reconnect backoff.
	push := func(at time.Duration, from, to int) (code int, body string) {
		req := cardBody(t, start.Add(at), metric, from, to)
		eventually(t, func(ct *assert.CollectT) bool {
			code, _, body = postRW(ct, c.writeURL(), contentTypeV2, req, hdr)
			return code != http.StatusServiceUnavailable
		}, 30*time.Second, 200*time.Millisecond, "the distributor kept answering 503: %s", body)
		return code, body
	}
	code, body := push(0, 0, 60)
	require.Equal(t, http.StatusBadRequest, code, body)

	// (a) Restart: the snapshot written on shutdown is restored.
	first.proc.Stop(t)
	cardStartIngester(c, first, extra...)
	c.waitActive(1)
	_, rows := cardGet(t, first.url("/promgov/api/v1/cardinality/metrics/"+metric+"?tenant="+tenant))
	require.EqualValues(t, 60, rows[0]["series"], "restored from the snapshot")
	require.EqualValues(t, 10, rows[0]["refused_series"])
	code, body = push(time.Minute, 100, 105)
	require.Equal(t, http.StatusBadRequest, code, "new series refused after a restart: %s", body)
	code, body = push(time.Minute, 0, cardLimit)
	require.Equal(t, http.StatusNoContent, code, "admitted series flow after a restart: %s", body)

	// (b) Scale down: a second ingester joins, then the metric's owner
	// leaves; the survivor must hold the metric's state.
	second := cardAddIngester(c, extra...)
	c.waitActive(2)
	owner, survivor := first, second
	eventually(t, func(ct *assert.CollectT) bool {
		a, b := cardTracks(ct, first, tenant, metric), cardTracks(ct, second, tenant, metric)
		if b && !a {
			owner, survivor = second, first
		}
		return a != b
	}, 30*time.Second, 100*time.Millisecond, "the metric has one owner once the handoff settled")
	t.Logf("%s owns %s; stopping it", owner.name, metric)
	owner.proc.Stop(t)
	c.waitActive(1)
	require.True(t, cardTracks(t, survivor, tenant, metric), "the survivor pulled the state while %s drained", owner.name)
	code, body = push(2*time.Minute, 200, 205)
	require.Equal(t, http.StatusBadRequest, code, "new series refused after scale-down: %s", body)
	code, body = push(2*time.Minute, 0, cardLimit)
	require.Equal(t, http.StatusNoContent, code, "admitted series flow after scale-down: %s", body)
	eventually(t, func(ct *assert.CollectT) bool {
		return len(c.backend.rawSamples(ct, metric)) == cardLimit
	}, 30*time.Second, 200*time.Millisecond, "the backend holds exactly the admitted series")
}
