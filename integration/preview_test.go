package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/usage"
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
// real Prometheus matches the preview's series after it. Then the feedback
// loop: a suggestion (an unused metric: no dashboard or rule reads any)
// is proposed as a shadow version with its preview, changes nothing until
// promoted, and once promoted stops reaching the backend.
func TestGovernancePreviewLabelDrop(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	g := startGovClusterWith(t, 1, []string{"--usage.reload-interval=1s"}, "--governance.store.backend=filesystem", "--governance.store.filesystem.directory="+store)
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
		atBackend = countAt(ct, g.backend, "count(last_over_time("+previewSelector+window+"))", last)
		apiAtBackend = countAt(ct, g.backend, "count(last_over_time(api_requests_total"+window+"))", last)
		return atBackend == 990 && apiAtBackend == 10
	}, 30*time.Second, 500*time.Millisecond, "after enforcement the backend should hold 990 series (api_requests_total: 10)")
	t.Logf("MEASURE enforcement at the backend: %.0f series (api_requests_total %.0f); preview said %.1f (api_requests_total %.1f): %+.2f %%",
		atBackend, apiAtBackend, d.Totals.SeriesAfter, api.SeriesAfter, 100*(d.Totals.SeriesAfter-atBackend)/atBackend)
	require.InEpsilon(t, atBackend, d.Totals.SeriesAfter, 0.05, "the preview's series after vs the backend")
	require.InEpsilon(t, 3980-atBackend, d.Totals.SeriesSaved, 0.05, "the preview's series saved vs the backend")

	proposeUnusedMetric(t, g)
}

func proposeUnusedMetric(t *testing.T, g *govCluster) {
	const metric = "preview_m07_total"
	var id string
	eventually(t, func(ct *assert.CollectT) bool {
		code, out := g.ctlQuiet("suggestions", "list")
		var ss []usage.Suggestion
		if code != 0 || json.Unmarshal([]byte(out), &ss) != nil {
			return false
		}
		for _, s := range ss {
			if s.Kind == usage.SuggestDropMetrics && slices.Equal(s.Metrics, []string{metric}) {
				id = s.ID
				return true
			}
		}
		return false
	}, 30*time.Second, 500*time.Millisecond, "no drop suggestion for %s", metric)
	code, out := g.ctl(t, "suggestions", "propose", "-o", "json", id)
	require.Equal(t, 0, code, out)
	var p preview.Proposal
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.EqualValues(t, 3, p.Version.Number)
	require.Equal(t, "shadow", string(p.Version.Mode))
	require.Len(t, p.Preview.Metrics, 1)
	require.Equal(t, metric, p.Preview.Metrics[0].Metric)
	require.Equal(t, 20.0, p.Preview.Totals.SeriesDropped)
	// The table form, for another unused metric (for docs/governance.md).
	code, out = g.ctlQuiet("suggestions", "list")
	require.Equal(t, 0, code, out)
	var ss []usage.Suggestion
	require.NoError(t, json.Unmarshal([]byte(out), &ss))
	for _, s := range ss {
		if s.Kind == usage.SuggestDropMetrics && slices.Equal(s.Metrics, []string{"preview_m08_total"}) {
			code, out = g.ctl(t, "suggestions", "propose", s.ID)
			require.Equal(t, 0, code, out)
		}
	}

	// A shadow version changes nothing.
	now := time.Now()
	writeV1(t, g.cluster, now, previewTraffic(now)...)
	eventually(t, func(ct *assert.CollectT) bool {
		return countAt(ct, g.backend, "count(last_over_time("+metric+"[1ms]))", now) == 20
	}, 30*time.Second, 500*time.Millisecond, "%s must still reach the backend while the proposal is in shadow", metric)

	code, out = g.ctl(t, "config", "promote", "3")
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 5) }, 10*time.Second, 50*time.Millisecond, "the promoted version never reached every node")
	after := time.Now()
	writeV1(t, g.cluster, after, previewTraffic(after)...)
	eventually(t, func(ct *assert.CollectT) bool {
		return countAt(ct, g.backend, "count(last_over_time(preview_m06_total[1ms]))", after) == 20
	}, 30*time.Second, 500*time.Millisecond, "the traffic after the promotion never reached the backend")
	require.Zero(t, countAt(t, g.backend, "count(last_over_time("+metric+"[1ms]))", after), "%s still reaches the backend after the promotion", metric)
}

// countAt evaluates a query that returns one number at ts, to the
// millisecond (0 for an empty result): with a [1ms] range it sees only
// the samples written at ts.
func countAt(t T, be *backend, query string, ts time.Time) float64 {
	t.Helper()
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	apiGetVia(t, be.httpClient(), be.base(), "/api/v1/query", url.Values{
		"query": {query}, "time": {strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64)},
	}, &data)
	if len(data.Result) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(data.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	return v
}
