package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAggregationClusterView sends an aggregated counter (5 pods over 2
// services, pod aggregated away) through a cluster of 2 ingesters: the
// distributor's aggregation API, merged from both ingesters over the
// cluster service, shows the metric as received (5 input series) and as
// written (2 output series), the same row as its owner's and none from the
// other ingester; the distributor's cardinality API counts the 5 series
// received; the backend holds the 2 series written and none of the inputs.
func TestAggregationClusterView(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	const metric = "agg_view_total"
	c, _ := newAggCluster(t, 2, metric)

	g := &aggGen{counter: metric, pods: 6, countersOnly: true} // pod 0 starts at step 25: pods 1-5
	var last time.Time
	for g.step = 0; g.step < 12; g.step++ {
		ts := time.Now()
		aggSend(t, c.writeURL(), g.body(t, ts), aggTenant)
		last = ts
		time.Sleep(time.Until(ts.Add(time.Second)))
	}
	out := `{__name__="` + metric + `:sum_without_pod"}`
	waitLastInterval(t, c.backend, out, last)

	path := "/promgov/api/v1/aggregation/metrics?tenant=" + aggTenant
	want := map[string]any{"rule": "requests", "tenant": aggTenant, "metric": metric,
		"input_series": float64(5), "output_series": float64(2)}
	raw, rows := cardGet(t, c.distributor.url(path))
	t.Logf("distributor GET %s\n%s", path, raw)
	require.Equal(t, []map[string]any{want}, rows, "the cluster view: as received and as written")

	owner := ownerOf(t, 2, aggTenant, metric)
	for _, n := range c.ingesters {
		raw, rows := cardGet(t, n.url(path))
		if n.name == owner {
			require.Equal(t, []map[string]any{want}, rows, "the owner %s: %s", n.name, raw)
		} else {
			require.Empty(t, rows, "%s does not own %s: %s", n.name, metric, raw)
		}
	}
	// Another tenant has no rows.
	_, rows = cardGet(t, c.distributor.url("/promgov/api/v1/aggregation/metrics?tenant=nobody"))
	require.Empty(t, rows)

	// As received, in the cardinality API: the 5 input series.
	_, card := cardGet(t, c.distributor.url("/promgov/api/v1/cardinality/metrics/"+metric+"?tenant="+aggTenant))
	require.Len(t, card, 1)
	require.Equal(t, float64(5), card[0]["series"], "the cardinality API counts the series received")
	// As written, in the backend: the outputs and none of the inputs.
	eventually(t, func(ct *assert.CollectT) bool {
		return c.backend.count(ct, fmt.Sprintf(`count(%s)`, out)) == 2
	}, 10*time.Second, 200*time.Millisecond, "the backend holds 2 output series")
	require.Zero(t, c.backend.count(t, `count(`+metric+`)`), "the inputs are aggregated away, not written")
}
