package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/usage"
)

// accessRecord is one item of an ingester's GET /promgov/api/v1/usage/access.
type accessRecord struct {
	Name  string   `json:"name"`
	Count uint64   `json:"count"`
	Users []string `json:"users"`
}

// ingesterAccess returns the query statistics an ingester holds, by metric.
func ingesterAccess(t T, n *node) map[string]accessRecord {
	t.Helper()
	var data struct {
		Metrics []accessRecord `json:"metrics"`
	}
	apiGet(t, "http://"+n.webAddr, "/promgov/api/v1/usage/access", url.Values{}, &data)
	out := map[string]accessRecord{}
	for _, r := range data.Metrics {
		out[r.Name] = r
	}
	return out
}

// ingesterTracks lists the metrics an ingester tracks the cardinality of.
func ingesterTracks(t T, n *node) map[string]bool {
	t.Helper()
	var data []struct {
		Name string `json:"name"`
	}
	apiGet(t, "http://"+n.webAddr, "/promgov/api/v1/cardinality/metrics", url.Values{"limit": {"-1"}}, &data)
	out := map[string]bool{}
	for _, m := range data {
		out[m.Name] = true
	}
	return out
}

// TestUsageQueryStatsLiveOnOwners checks that query statistics live on each
// metric's owning ingester, like its cardinality, and survive a ring
// change and a restart.
//
//	queries ──► distributor (query tap) ──proxy──► Prometheus 3.16
//	               │  every 200 ms: RecordAccess to each metric's owner
//	               ▼
//	        ingester-1   ingester-2      (/promgov/api/v1/usage/access on each)
//
// Ten metrics are written and metric i is queried i+1 times through the tap,
// by the tenant that wrote them (placement is by tenant and metric name).
// Each metric's statistics must be on exactly one ingester, the one that
// tracks its cardinality, and the distributor's usage API must show the
// counts. ingester-2 then leaves (SIGTERM): ingester-1 takes its metrics
// over with their statistics. ingester-1 is restarted on the same WAL
// directory: the statistics come back from its snapshot.
func TestUsageQueryStatsLiveOnOwners(t *testing.T) {
	t.Parallel()
	c := startUsageCluster(t, "off")
	c.addIngester()
	c.waitActive(2)

	const n = 10
	metric := func(i int) string { return fmt.Sprintf("usage_owner_%d_total", i) }
	var series [][]string
	var want []string
	for i := range n {
		series = append(series, []string{metric(i), "job", "app"})
		want = append(want, fmt.Sprintf(`{__name__="%s", job="app"}`, metric(i)))
	}
	writeV1(t, c, time.Now(), series...)
	waitSeries(t, c, `{__name__=~"usage_owner_.*"}`, want...)

	for i := range n {
		for range i + 1 {
			q := url.Values{"query": {fmt.Sprintf(`sum by (job) (%s)`, metric(i))}}
			req, err := http.NewRequest(http.MethodGet, c.distributor.url("/api/v1/query?"+q.Encode()), nil)
			require.NoError(t, err)
			req.Header.Set("X-Grafana-User", "alice")
			req.Header.Set("X-Scope-OrgID", "team-a") // writeV1's tenant: the same owners
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}

	// Every metric's statistics are on exactly one ingester, its owner.
	owners := map[string]string{}
	eventually(t, func(ct *assert.CollectT) bool {
		for i := range n {
			owners[metric(i)] = ""
		}
		for _, in := range c.ingesters {
			acc, tracks := ingesterAccess(ct, in), ingesterTracks(ct, in)
			for i := range n {
				r, ok := acc[metric(i)]
				if !ok {
					continue
				}
				if owners[metric(i)] != "" || r.Count != uint64(i+1) || !tracks[metric(i)] {
					return false
				}
				owners[metric(i)] = in.name
			}
		}
		for i := range n {
			if owners[metric(i)] == "" {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "query statistics never settled on the owning ingesters: %v", owners)
	perIngester := map[string]int{}
	for _, o := range owners {
		perIngester[o]++
	}
	t.Logf("metrics whose statistics each ingester holds: %v", perIngester)

	waitCounts := func(why string) {
		t.Helper()
		eventually(t, func(ct *assert.CollectT) bool {
			got := usageMetrics(ct, c, "")
			for i := range n {
				if got[metric(i)].QueryCount != uint64(i+1) {
					return false
				}
			}
			return true
		}, 30*time.Second, 200*time.Millisecond, "the distributor's usage API never showed the query counts %s", why)
	}
	waitCounts("read from the owners")

	// ingester-2 leaves: ingester-1 pulls its metrics and their statistics.
	survivor, leaver := c.ingesters[0], c.ingesters[1]
	leaver.proc.Stop(t)
	c.ingesters = c.ingesters[:1]
	c.waitActive(1)
	acc := ingesterAccess(t, survivor)
	for i := range n {
		require.Equal(t, uint64(i+1), acc[metric(i)].Count, "%s's statistics on the survivor", metric(i))
	}
	waitCounts("after ingester-2 left")

	// A restart restores them from the snapshot next to the WAL.
	survivor.proc.Stop(t)
	c.startIngester(survivor)
	c.waitActive(1)
	acc = ingesterAccess(t, survivor)
	for i := range n {
		require.Equal(t, uint64(i+1), acc[metric(i)].Count, "%s's statistics after a restart", metric(i))
		require.Equal(t, []string{"alice"}, acc[metric(i)].Users)
	}
	waitCounts("after the restart")
}

// usageSuggestion is one /promgov/api/v1/usage/suggestions item.
type usageSuggestion struct {
	Kind         string              `json:"kind"`
	Metrics      []string            `json:"metrics"`
	Labels       []string            `json:"labels"`
	Rules        []usage.RelabelRule `json:"rules"`
	SeriesSaved  uint64              `json:"series_saved"`
	MergesSeries bool                `json:"merges_series"`
}

// TestUsageSuggestsLabelDrop: the dashboard reads usage_used_total only by
// job, so its phase label is unused. With per-label costs from the
// ingesters' cardinality state, the metric is partially_used and the
// labeldrop suggestion says dropping phase merges its two series into one.
//
//	writes ──► distributor ──► ingester ──► Prometheus 3.16
//	                           └── /promgov/api/v1/usage/suggestions (costs fanned out)
func TestUsageSuggestsLabelDrop(t *testing.T) {
	t.Parallel()
	c := startUsageCluster(t, "off")
	writeUsagePhase(t, c, "before")
	writeUsagePhase(t, c, "after")
	waitSeries(t, c, `usage_used_total`,
		`{__name__="usage_used_total", job="app", phase="after"}`,
		`{__name__="usage_used_total", job="app", phase="before"}`)

	var got []usageSuggestion
	eventually(t, func(ct *assert.CollectT) bool {
		if usageMetrics(ct, c, "partially_used")["usage_used_total"].Series != 2 {
			return false
		}
		got = nil
		apiGet(ct, "http://"+c.distributor.webAddr, usage.PathSuggestions, url.Values{}, &got)
		for _, s := range got {
			if len(s.Labels) == 1 && s.Labels[0] == "phase" && len(s.Metrics) == 1 && s.Metrics[0] == "usage_used_total" {
				return s.SeriesSaved == 1 && s.MergesSeries
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "no labeldrop suggestion for phase saving 1 series: %+v", lazy(func() any { return got }))
	// Every suggestion saves something and its rules touch only the
	// metrics it names.
	for _, s := range got {
		require.Positive(t, s.SeriesSaved, "%+v", s)
		for _, r := range s.Rules {
			require.Equal(t, []string{"__name__"}, r.SourceLabels, "%+v", s)
			require.Equal(t, strings.Join(s.Metrics, "|"), r.Regex, "%+v", s)
		}
	}
	_, body := rawGet(t, c.distributor.url(usage.PathSuggestions))
	t.Logf("GET %s: %s", usage.PathSuggestions, body)
}
