package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/preview"
)

// previewTraffic is known traffic: 49 metrics of 20 series and
// api_requests_total with an exploding request_id (10 instances x 300
// request IDs): 3980 series, one sample each at ts.
func previewTraffic(ts time.Time) [][]string {
	var series [][]string
	for m := range 49 {
		for i := range 20 {
			series = append(series, []string{fmt.Sprintf("preview_m%02d_total", m), "instance", fmt.Sprintf("host-%d:9100", i), "job", "node"})
		}
	}
	for i := range 3000 {
		series = append(series, []string{"api_requests_total", "instance", fmt.Sprintf("api-%d:8080", i%10), "job", "api", "request_id", strconv.Itoa(i)})
	}
	return series
}

const previewSelector = `{__name__=~"preview_m.._total|api_requests_total"}`

// TestGovernancePreviewLabelDrop: the preview of "labeldrop request_id on
// api_requests_total" over live traffic reports the series saved within
// 5 % of the truth, and once that candidate is applied, what reaches the
// real Prometheus matches the preview's series after it.
func TestGovernancePreviewLabelDrop(t *testing.T) {
	store := t.TempDir()
	g := startGovClusterWith(t, 1, "--governance.store.backend=filesystem", "--governance.store.filesystem.directory="+store)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 1) }, 15*time.Second, 100*time.Millisecond, "nodes never ran the seed")

	// Before: three rounds, in the past so the post-apply window below
	// holds none of them.
	start := time.Now()
	for r := range 3 {
		ts := start.Add(-3*time.Minute + time.Duration(r)*10*time.Second)
		writeV1(t, g.cluster, ts, previewTraffic(ts)...)
	}
	eventually(t, func(ct *assert.CollectT) bool {
		return instantCount(ct, g.backend, "count(last_over_time("+previewSelector+"[5m]))", start) == 3980
	}, 60*time.Second, 500*time.Millisecond, "the backend never held the 3980 series of the traffic")

	cand := filepath.Join(t.TempDir(), "labeldrop.yml")
	require.NoError(t, os.WriteFile(cand, []byte(`rules:
  - name: drop-request-id
    scope: {selector: '{__name__="api_requests_total"}'}
    relabel_configs:
      - regex: request_id
        action: labeldrop
`), 0o644))
	code, out := g.ctl(t, "config", "preview", "--examples=2", cand)
	require.Equal(t, 0, code, out)
	code, out = g.ctl(t, "config", "preview", "-o", "json", "--examples=2", cand)
	require.Equal(t, 0, code, out)
	var d preview.Data
	require.NoError(t, json.Unmarshal([]byte(out), &d), out)
	require.Equal(t, 2, d.Ingesters)
	require.Equal(t, 50, d.SampledMetrics)
	var api *preview.Metric
	for i := range d.Metrics {
		if d.Metrics[i].Metric == "api_requests_total" {
			api = &d.Metrics[i]
		}
	}
	require.NotNil(t, api, "api_requests_total is not among the metrics changed")
	require.Len(t, d.Metrics, 1, "only api_requests_total changes")
	const trueSaved = 3000 - 10
	saved := api.SeriesBefore - api.SeriesAfter
	t.Logf("MEASURE preview: api_requests_total %.0f -> %.1f series, saved %.1f (truth %d, error %+.2f %%); totals before %.1f after %.1f (truth 3980 -> 990)",
		api.SeriesBefore, api.SeriesAfter, saved, trueSaved, 100*(saved-trueSaved)/trueSaved, d.Totals.SeriesBefore, d.Totals.SeriesAfter)
	require.InEpsilon(t, trueSaved, saved, 0.05, "series saved")
	require.InEpsilon(t, trueSaved, d.Totals.SeriesSaved, 0.05, "series saved in the totals")
	require.NotEmpty(t, d.Examples)
	require.Equal(t, "drop-request-id", d.Examples[0].Trace[0].Rule)
	require.Equal(t, "rewritten", string(d.Examples[0].Trace[0].Effect))

	// Enforce it.
	code, out = g.ctl(t, "config", "apply", "--if-match=1", "--message=drop request_id", cand)
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 2) }, 10*time.Second, 50*time.Millisecond, "version 2 never reached every node")
	var last time.Time
	for range 2 {
		last = time.Now()
		writeV1(t, g.cluster, last, previewTraffic(last)...)
	}
	window := "[" + strconv.Itoa(int(time.Since(start).Seconds())+5) + "s]" // only what was written after the apply
	var atBackend, apiAtBackend float64
	eventually(t, func(ct *assert.CollectT) bool {
		atBackend = instantCount(ct, g.backend, "count(last_over_time("+previewSelector+window+"))", last)
		apiAtBackend = instantCount(ct, g.backend, "count(last_over_time(api_requests_total"+window+"))", last)
		return atBackend == 990 && apiAtBackend == 10
	}, 30*time.Second, 500*time.Millisecond, "after enforcement the backend should hold 990 series (api_requests_total: 10)")
	t.Logf("MEASURE enforcement at the backend: %.0f series (api_requests_total %.0f); preview said %.1f (api_requests_total %.1f): %+.2f %%",
		atBackend, apiAtBackend, d.Totals.SeriesAfter, api.SeriesAfter, 100*(d.Totals.SeriesAfter-atBackend)/atBackend)
	require.InEpsilon(t, atBackend, d.Totals.SeriesAfter, 0.05, "the preview's series after vs the backend")
	require.InEpsilon(t, 3980-atBackend, d.Totals.SeriesSaved, 0.05, "the preview's series saved vs the backend")
}
