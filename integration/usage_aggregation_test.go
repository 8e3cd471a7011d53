package integration

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/usage"
)

// webDashboard reads web_requests_total only by service and status: pod is
// an unused label.
const webDashboard = `{
  "uid": "web", "title": "Web",
  "panels": [{"type": "timeseries", "title": "Requests",
    "datasource": {"type": "prometheus", "uid": "prom"},
    "targets": [{"expr": "sum by (service, status) (rate(web_requests_total[$__rate_interval]))"}]}]
}`

// webBody is one scrape of web_requests_total: 4 services × 3 statuses ×
// 10 pods = 120 counter series, pod p of a group growing by p+1 a step.
func webBody(t *testing.T, step int, ts time.Time) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for _, svc := range []string{"cart", "checkout", "search", "users"} {
		for _, status := range []string{"200", "404", "500"} {
			for p := range 10 {
				ls := labels.FromStrings("__name__", "web_requests_total", "pod", "web-"+strconv.Itoa(p), "service", svc, "status", status)
				req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
					LabelsRefs: st.SymbolizeLabels(ls, nil),
					Samples:    []writev2.Sample{{Value: float64(step * (p + 1)), Timestamp: ts.UnixMilli()}},
					Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
				})
			}
		}
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// webSuggestion is the part of a usage suggestion this test reads.
type webSuggestion struct {
	Kind             string                 `json:"kind"`
	Metrics          []string               `json:"metrics"`
	Labels           []string               `json:"labels"`
	SeriesSaved      uint64                 `json:"series_saved"`
	SamplesRateSaved float64                `json:"samples_rate_saved"`
	Aggregations     []aggregate.RuleConfig `json:"aggregations"`
}

// TestAggregationSuggestionApplied is issue 15's worked example: a
// realistic counter read only by (service, status) gets an aggregation
// suggestion; the suggested rule, applied as it is to the owning
// ingester's file and reloaded, cuts what reaches the backend, and the
// test measures what it saved against what the suggestion said.
//
//	sender ──RW 2.0──► distributor (usage: a dashboard) ──► ingester (aggregations: reloaded) ──► Prometheus 3.16
func TestAggregationSuggestionApplied(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	dash := filepath.Join(t.TempDir(), "dashboard.json")
	require.NoError(t, os.WriteFile(dash, []byte(webDashboard), 0o644))
	c := &cluster{t: t, backend: startBackend(t), backendProtocol: 1}
	n := &node{name: "distributor", webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
	n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"),
		"--web.listen-address="+n.webAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.node-name="+n.name,
		"--usage.dashboards-path="+dash,
		"--usage.reload-interval=300ms",
		"--query.backend-url=http://"+c.backend.addr,
	)
	c.distributor = n
	cfg := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("aggregations: []\n"), 0o644))
	ing := cardAddIngester(c, "--config.file="+cfg)
	c.waitActive(1)

	step := 0
	push := func(d time.Duration) (samples int) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			ts := time.Now()
			aggSend(t, c.writeURL(), webBody(t, step, ts), "")
			step++
			samples += 120
			time.Sleep(time.Until(ts.Add(time.Second)))
		}
		return samples
	}

	// Before: every series reaches the backend, one sample per second each.
	push(10 * time.Second)
	waitSeriesCount(t, c, `web_requests_total`, 120)
	var sug webSuggestion
	eventually(t, func(ct *assert.CollectT) bool {
		push(time.Second)
		var got []webSuggestion
		apiGet(ct, "http://"+c.distributor.webAddr, usage.PathSuggestions, url.Values{}, &got)
		for _, s := range got {
			if s.Kind == usage.SuggestAggregation && len(s.Labels) == 1 && s.Labels[0] == "pod" && len(s.Aggregations) == 1 {
				sug = s
				return true
			}
		}
		return false
	}, 60*time.Second, 500*time.Millisecond, "no aggregation suggestion for pod on web_requests_total")
	t.Logf("suggestion: aggregate pod away from %v: saves %d series and %.2f samples/s; rule %+v",
		sug.Metrics, sug.SeriesSaved, sug.SamplesRateSaved, sug.Aggregations[0])
	require.Equal(t, []string{"web_requests_total"}, sug.Metrics)
	require.Equal(t, uint64(108), sug.SeriesSaved, "120 series become 12")

	// Apply the suggested rule as it is and reload the owner.
	doc, err := yaml.Marshal(map[string]any{"aggregations": sug.Aggregations})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, doc, 0o644))
	resp, err := http.Post(ing.url("/-/reload"), "", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)

	// After: two full aggregation intervals of traffic.
	inBefore := metricSum(ing.url("/metrics"), "promgov_aggregation_samples_in_total")
	outBefore := metricSum(ing.url("/metrics"), "promgov_aggregation_samples_out_total")
	start := time.Now()
	sent := push(2*time.Minute + 5*time.Second)
	elapsed := time.Since(start).Seconds()
	in := metricSum(ing.url("/metrics"), "promgov_aggregation_samples_in_total") - inBefore
	out := metricSum(ing.url("/metrics"), "promgov_aggregation_samples_out_total") - outBefore
	waitSeriesCount(t, c, `web_requests_total:sum_without_pod`, 12)
	t.Logf("after the suggestion was applied, over %.0f s: %d input samples sent (%.1f/s), aggregated in %.0f, written out %.0f (%.2f/s); "+
		"backend series: web_requests_total:sum_without_pod 12 (was web_requests_total 120)", elapsed, sent, float64(sent)/elapsed, in, out, out/elapsed)
	require.Equal(t, float64(sent), in, "every input sample after the reload was aggregated")
	require.InDelta(t, 12*2, out, 12, "one output sample per group and interval")
}

// waitSeriesCount waits until the backend holds n series for selector.
func waitSeriesCount(t *testing.T, c *cluster, selector string, n int) {
	t.Helper()
	eventually(t, func(ct *assert.CollectT) bool {
		return len(backendSeries(ct, c, selector)) == n
	}, 60*time.Second, 250*time.Millisecond, "backend never held %d series for %s", n, selector)
}
