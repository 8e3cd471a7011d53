package ui

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/usage"
)

// rolloutStub is the rollout status of two nodes, one lagging.
type rolloutStub struct{}

func (rolloutStub) Notify(uint64) {}
func (rolloutStub) Status() any {
	return rolloutStatus{Self: "dist-1", Active: 2, Laggards: []string{"ingester-1"},
		Nodes: []rolloutNode{{Node: "dist-1", Role: "distributor", Version: 2}, {Node: "ingester-1", Role: "ingester", Version: 1, Error: "cannot apply"}}}
}

const (
	govDoc1 = "rules:\n  - name: drop-a\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: a_.*\n        action: drop\n"
	govDoc2 = "rules:\n  - name: drop-b\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: b_.*\n        action: drop\n"
)

// send serves one request on the test cluster's mux.
func (c *testCluster) send(t *testing.T, method, target string, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	c.mux.ServeHTTP(rec, req)
	return rec
}

// writeVersion writes a version through the governance API.
func (c *testCluster) writeVersion(t *testing.T, ifMatch, mode, body, msg string) {
	t.Helper()
	target := govapi.PathConfig
	if mode != "" {
		target += "?mode=" + mode
	}
	rec := c.send(t, http.MethodPut, target, body, map[string]string{"If-Match": ifMatch, govapi.HeaderUser: "alice", govapi.HeaderMessage: msg})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// form POSTs a form from a page of the same origin.
func (c *testCluster) form(t *testing.T, path string, v url.Values) *httptest.ResponseRecorder {
	t.Helper()
	return c.send(t, http.MethodPost, path, v.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"})
}

func TestConfigPages(t *testing.T) {
	c := newTestCluster(t, 5)
	c.writeVersion(t, "0", "", govDoc1, "first")
	c.writeVersion(t, "1", "", govDoc2, "second "+hostile)
	c.writeVersion(t, "2", "shadow", govDoc1+"  - name: drop-c\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: c_.*\n        action: drop\n", "candidate")

	require.Contains(t, c.get(t, "/"), `<p class="n">v2</p><p><a href="/ui/config">configuration version</a>: 1 of 2 nodes not on it yet</p>`, "the overview")
	page := c.get(t, PathConfig)
	require.Contains(t, page, `Version <strong>2</strong>`, "the active version")
	require.Contains(t, page, "1 of 2 nodes are not on version 2 yet: ingester-1", "the rollout")
	require.Contains(t, page, "cannot apply")
	require.Contains(t, page, `aria-label="Promote version 3"`, "the shadow candidate may be promoted")
	require.Contains(t, page, `aria-label="Roll back to version 1"`, "the earlier version may be rolled back to")
	require.NotContains(t, page, `aria-label="Roll back to version 2"`, "not to the active version")
	require.Contains(t, page, `name="if_match" value="3"`, "actions name the newest version shown")
	require.NotContains(t, page, hostile, "a message is escaped")
	require.Contains(t, page, "second &lt;script&gt;")

	diff := c.get(t, PathConfigDiff+"?from=1&to=2")
	require.Contains(t, diff, `<span class="del"><span class="sr-only">removed: </span>-  - name: drop-a</span>`)
	require.Contains(t, diff, `<span class="add"><span class="sr-only">added: </span>&#43;  - name: drop-b</span>`)
	require.Contains(t, diff, "Version 2 (YAML)")
	require.Contains(t, c.get(t, PathConfigDiff+"?to=3"), "&#43;  - name: drop-c", "to alone diffs against the version before")

	t.Run("promote", func(t *testing.T) {
		rec := c.form(t, PathConfigPromote, url.Values{"version": {"3"}, "if_match": {"3"}, "message": {"ship it\nnow"}})
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Equal(t, PathConfig+"?written=4", rec.Header().Get("Location"))
		page := c.get(t, rec.Header().Get("Location"))
		require.Contains(t, page, "Version 4 written by anonymous: promote version 3: ship it now.")
		require.Contains(t, page, `Version <strong>4</strong>`)
	})
	t.Run("stale page is a conflict", func(t *testing.T) {
		rec := c.form(t, PathConfigRollback, url.Values{"if_match": {"3"}})
		require.Equal(t, http.StatusConflict, rec.Code)
		require.Contains(t, rec.Body.String(), "the configuration changed since this page was loaded")
		require.Contains(t, rec.Body.String(), `Version <strong>4</strong>`, "nothing was written")
	})
	t.Run("rollback", func(t *testing.T) {
		rec := c.form(t, PathConfigRollback, url.Values{"if_match": {"4"}, "to": {"1"}})
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Contains(t, c.get(t, rec.Header().Get("Location")), "Version 5 written by anonymous: rollback to version 1.")
	})
	t.Run("cross-site form is refused", func(t *testing.T) {
		rec := c.send(t, http.MethodPost, PathConfigRollback, "if_match=5", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"})
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.NotContains(t, c.get(t, PathConfig), "Version 6")
	})
	t.Run("read-only viewer", func(t *testing.T) {
		c.ui.d.Permits = func(*http.Request, string, string) (string, error) {
			return "reader", errors.New(`identity "reader" lacks the admin role this action needs`)
		}
		defer func() { c.ui.d.Permits = nil }()
		page := c.get(t, PathConfig)
		require.NotContains(t, page, "<button", "no action is offered")
		require.Contains(t, page, `Read-only: identity &#34;reader&#34; lacks the admin role this action needs`)
		rec := c.form(t, PathConfigRollback, url.Values{"if_match": {"5"}})
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Contains(t, rec.Body.String(), "not changed: identity &#34;reader&#34; lacks the admin role")
		require.NotContains(t, c.get(t, PathConfig), "Version 6")
	})
}

func TestConfigPagesWithoutStore(t *testing.T) {
	c := newTestCluster(t, 5)
	c.ui.d.Governance = false
	require.Contains(t, c.get(t, PathConfig), "has no governance store")
	require.Contains(t, c.get(t, PathConfigDiff), "has no governance store")
	rec := c.form(t, PathConfigRollback, nil)
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestAggregationPage(t *testing.T) {
	c := newTestCluster(t, 5)
	page := c.get(t, PathAggregation)
	require.Contains(t, page, `<p class="n" id="agg-inputs">20</p>`)
	require.Contains(t, page, `<p class="n" id="agg-outputs">5</p>`)
	require.Contains(t, page, `<p class="n" id="agg-reduction">75%</p>`)
	require.Contains(t, page, `<th scope="row">by-service</th><td class="num">2</td><td class="num">10</td><td class="num">4</td><td class="num" data-v="0.6">60%</td>`)
	require.NotContains(t, page, hostile, "a metric name is escaped")

	filtered := c.get(t, PathAggregation+"?filter=latency")
	require.Contains(t, filtered, "evil_&lt;script&gt;")
	require.NotContains(t, filtered, `tenant=team-b`)

	// The running rules, from a GET form.
	q := url.Values{"series": {`agg_requests_total{pod="p1",service="a"}` + "\n" + `debug_x{}`}, "tenant": {"team-a"}, "type": {"counter"}}
	res := c.get(t, PathAggregation+"?"+q.Encode())
	require.Contains(t, res, "<strong>aggregated</strong> by by-service (enforce, every 30s) into <code>{__name__=&#34;agg_requests_total:sum_without_pod&#34;, service=&#34;a&#34;}</code>")
	require.Contains(t, res, "dropped by drop-debug")

	// A candidate, POSTed: the active rules still run first.
	cand := "aggregations:\n- {name: cand, match: agg_requests_total, by: [service], interval: 1m}\n"
	v := url.Values{"series": q["series"], "tenant": {"team-a"}, "type": {"counter"}, "candidate": {cand}}
	rec := c.form(t, PathAggregation, v)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "<strong>aggregated</strong> by cand (enforce, every 1m) into <code>{__name__=&#34;service:agg_requests_total:sum&#34;, service=&#34;a&#34;}</code>")
	require.Contains(t, rec.Body.String(), "dropped by drop-debug", "the candidate keeps the active rules")
	require.Contains(t, rec.Body.String(), "Candidate configuration")

	v.Set("candidate", "rules: [")
	rec = c.form(t, PathAggregation, v)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "candidate: not YAML")

	c.ui.d.Permits = func(*http.Request, string, string) (string, error) {
		return "reader", errors.New(`identity "reader" lacks the admin role this action needs`)
	}
	defer func() { c.ui.d.Permits = nil }()
	page = c.get(t, PathAggregation)
	require.Contains(t, page, "Testing candidate rules is not offered: identity &#34;reader&#34; lacks the admin role")
	require.NotContains(t, page, `id="candidate"`)
	v.Set("candidate", cand)
	rec = c.form(t, PathAggregation, v)
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Contains(t, rec.Body.String(), "candidate not tested: identity &#34;reader&#34; lacks the admin role")
}

// TestAggregationCandidates: the aggregation suggestions, and only they,
// are listed as `aggregations:` YAML, in the classification's order.
func TestAggregationCandidates(t *testing.T) {
	v := newReportView(&usage.Report{})
	v.sugOnce.Do(func() {
		v.sug = []usage.Suggestion{
			{Kind: usage.SuggestDropMetrics, Metrics: []string{"unused_total"}, SeriesSaved: 900},
			{Kind: usage.SuggestAggregation, Metrics: []string{"requests_total"}, Labels: []string{"pod"}, SeriesSaved: 400, MergesSeries: true,
				Aggregations: []aggregate.RuleConfig{{Name: "requests_total_without_pod", Match: "requests_total", Without: []string{"pod"}, Interval: model.Duration(time.Minute)}}},
		}
	})
	got := aggregationCandidates(v)
	require.Len(t, got, 1)
	require.Equal(t, []string{"requests_total"}, got[0].Metrics)
	require.Equal(t, "aggregations:\n    - name: requests_total_without_pod\n      match: requests_total\n      without:\n        - pod\n      interval: 1m\n", got[0].YAML)
}
