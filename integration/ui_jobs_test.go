package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/usage"
)

// The series of the jobs and proposals test: uiRetroLegacy is renamed by
// the jobs' candidate (one of its label values is HTML); uiProposeMetric
// is proposed for dropping and uiKeepMetric stays.
const (
	uiRetroLegacy   = "ui_retro_legacy_total"
	uiRetroRenamed  = "ui_retro_renamed_total"
	uiProposeMetric = "ui_propose_unused_total"
	uiKeepMetric    = "ui_keep_total"
	uiRetroSeries   = 5
	uiRetroCand     = "rules:\n- name: rename-legacy\n  relabel_configs:\n  - source_labels: [__name__]\n    regex: " + uiRetroLegacy + "\n    target_label: __name__\n    replacement: " + uiRetroRenamed + "\n"
)

// sendUIJobsTraffic writes the test's series at ts through the
// distributor as the admin.
func (g *uiGovCluster) sendUIJobsTraffic(t T, ts time.Time) bool {
	var series []fixtureSeries
	add := func(ls labels.Labels) {
		series = append(series, fixtureSeries{labels: ls, floats: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: float64(ts.Unix() % 1000)}}})
	}
	for i := range uiRetroSeries {
		add(labels.FromStrings("__name__", uiRetroLegacy, "job", "uiretro", "instance", fmt.Sprintf("host-%d", i), "path", uiHostileHTML))
	}
	for i := range 4 {
		add(labels.FromStrings("__name__", uiProposeMetric, "job", "uiretro", "instance", fmt.Sprintf("host-%d", i)))
		add(labels.FromStrings("__name__", uiKeepMetric, "job", "uiretro", "instance", fmt.Sprintf("host-%d", i)))
	}
	code, _, _ := postRW(t, g.writeURL(), contentTypeV1, encodeV1Any(t, series), map[string]string{"X-Scope-OrgID": uiTenant, "Authorization": g.admin})
	return code == http.StatusNoContent
}

// encodeV1Any is encodeV1 for a T (require.Eventually's CollectT too).
func encodeV1Any(t T, series []fixtureSeries) []byte {
	var req prompb.WriteRequest
	for _, s := range series {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: prompb.FromLabels(s.labels, nil), Samples: s.floats})
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// submitJob starts a retrospective job over the test's series as the
// admin, against the cluster's Prometheus.
func (g *uiGovCluster) submitJob(t *testing.T, mode string, throttles string, from, to time.Time) retro.Job {
	t.Helper()
	body := fmt.Sprintf(`{"candidate": %q, "selector": %q, "start": %q, "end": %q, "mode": %q, "tenant": %q,
		"backend": {"kind": "prometheus", "url": %q}%s}`, uiRetroCand, `{__name__="`+uiRetroLegacy+`"}`,
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), mode, uiTenant, "http://"+g.backend.addr, throttles)
	var j retro.Job
	code := g.api(t, g.admin, http.MethodPost, retro.PathRetrospective, []byte(body), nil, &j)
	require.Equal(t, http.StatusOK, code)
	return j
}

// job reads a job through the API as the admin.
func (g *uiGovCluster) job(t T, id string) retro.Job {
	var j retro.Job
	require.Equal(t, http.StatusOK, g.api(t, g.admin, http.MethodGet, retro.PathJobs+"/"+id, nil, nil, &j))
	return j
}

// postForm POSTs a form as the identity authz, as a page of the
// distributor would (same origin), and answers the status and body.
func (g *uiGovCluster) postForm(t *testing.T, authz, path string, v url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.distributor.url(path), strings.NewReader(v.Encode()))
	require.NoError(t, err)
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestUIJobsAndProposalsInBrowser drives the Jobs pages and the
// suggestion → proposal → approve/reject loop in headless chromium against
// a cluster with a governance store, authorisation on, real traffic and a
// real Prometheus: a dry run shows its examples with a label value holding
// HTML as text, an executed job its progress per batch, the admin cancels
// and resumes a throttled job; a suggestion is proposed from the rules
// page, its preview is shown on the versions page, one proposal is
// rejected (the cluster stops running it in shadow) and another approved,
// after which its metric no longer reaches Prometheus. A reader is offered
// none of the actions and is refused (403) when posting them.
func TestUIJobsAndProposalsInBrowser(t *testing.T) {
	b := newBrowser(t)
	g := startUIGovCluster(t, "--usage.reload-interval=1s", "--retrospective.directory="+filepath.Join(t.TempDir(), "jobs"))
	base := g.distributor.url("")

	// Real traffic: a few pushes a second apart, stored by Prometheus.
	began := time.Now().Add(-time.Minute)
	for i := range 3 {
		ts := time.Now()
		eventually(t, func(ct *assert.CollectT) bool { return g.sendUIJobsTraffic(ct, ts) }, 20*time.Second, 200*time.Millisecond, "push %d was never accepted", i)
	}
	eventually(t, func(ct *assert.CollectT) bool {
		return g.backend.count(ct, "count(count_over_time("+uiRetroLegacy+"[10m]))") == uiRetroSeries
	}, 30*time.Second, 200*time.Millisecond, "the legacy series never reached Prometheus")
	end := time.Now().Add(time.Second)

	dry := g.submitJob(t, retro.ModeDryRun, "", began, end)
	exec := g.submitJob(t, retro.ModeExecute, `, "throttles": {"max_concurrency": 1}`, began, end)
	eventually(t, func(ct *assert.CollectT) bool {
		return g.job(ct, dry.ID).State == retro.StateSucceeded && g.job(ct, exec.ID).State == retro.StateSucceeded
	}, time.Minute, 200*time.Millisecond, "the dry run and the execution never succeeded")
	require.EqualValues(t, uiRetroSeries, g.backend.count(t, "count(count_over_time("+uiRetroRenamed+"[10m]))"), "the execution copied every series")

	t.Run("reader sees the jobs and no action", func(t *testing.T) {
		b.as(g.reader)
		b.open(base + "/ui/jobs")
		rows := b.text("#jobs tbody")
		assert.Contains(t, rows, dry.ID)
		assert.Contains(t, rows, exec.ID)
		assert.Contains(t, rows, fmt.Sprintf("%d / %d", uiRetroSeries, uiRetroSeries), "the execution's series done / total")
		assert.Contains(t, b.text("#read-only"), `identity "reader" lacks the admin role`)
		assert.Zero(t, b.count("main button"))
		b.shot("distributor-jobs-reader")

		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(`#jobs a[href="/ui/jobs/`+dry.ID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#examples"))))
		assert.Contains(t, b.text("#dryrun-summary"), fmt.Sprintf("%d series matched, 0 unchanged, %d affected (%d renamed", uiRetroSeries, uiRetroSeries, uiRetroSeries))
		ex := b.text("#examples tbody")
		assert.Contains(t, ex, uiRetroLegacy+"{")
		assert.Contains(t, ex, uiRetroRenamed+"{")
		assert.Contains(t, ex, `path="`+uiHostileHTML+`"`, "the HTML label value is shown as text")
		assert.Zero(t, b.count("#examples b"), "the HTML is not markup")
		assert.False(t, b.pwned(), "a script in a label value ran")
		b.shot("distributor-job-dry-run")

		b.open(base + "/ui/jobs/" + exec.ID)
		assert.Contains(t, b.text("#progress"), fmt.Sprintf("%d / %d", uiRetroSeries, uiRetroSeries))
		assert.Equal(t, 1, b.count("#batches li.bdone"), "the one batch is done")
		assert.Contains(t, b.text("#batch-log"), fmt.Sprintf("batch 0: %d series", uiRetroSeries))
		b.shot("distributor-job-executed")

		for _, path := range []string{"/ui/jobs/" + exec.ID + "/resume", "/ui/jobs/" + exec.ID + "/cancel", retro.PathJobs + "/" + exec.ID + "/cancel"} {
			code, body := g.postForm(t, g.reader, path, nil)
			assert.Equal(t, http.StatusForbidden, code, path)
			assert.Contains(t, body, "lacks the admin role", path)
		}
	})

	t.Run("admin cancels and resumes a running job", func(t *testing.T) {
		// 0.1 series a second: the job stays in planning or running.
		slow := g.submitJob(t, retro.ModeExecute, `, "throttles": {"max_series_per_second": 0.1}`, began, end)
		b.as(g.admin)
		b.open(base + "/ui/jobs")
		b.shot("distributor-jobs-admin")
		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(`button[aria-label="Cancel job `+slow.ID+`"]`)), chromedp.WaitVisible(chromedp.CSS("#acted"))))
		assert.Contains(t, b.text("#acted"), "Job cancelled: it is now cancelled.")
		assert.Equal(t, retro.StateCancelled, g.job(t, slow.ID).State)
		// Resumed, the job may be cancelled again.
		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(`button[aria-label="Resume job `+slow.ID+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Cancel job `+slow.ID+`"]`))))
		assert.Contains(t, b.text("#acted"), "Job resumed")
		assert.NotEqual(t, retro.StateCancelled, g.job(t, slow.ID).State)
		b.shot("distributor-job-resumed")
		code, _ := g.postForm(t, g.admin, retro.PathJobs+"/"+slow.ID+"/cancel", nil) // stop it
		require.Equal(t, http.StatusOK, code)
	})

	// The suggestions: every metric is unused (no dashboard or rule reads
	// them), so each is a drop suggestion.
	suggestion := func(metric string) string {
		var id string
		eventually(t, func(ct *assert.CollectT) bool {
			var ss []usage.Suggestion
			if g.api(ct, g.admin, http.MethodGet, usage.PathSuggestions+"?limit=-1", nil, nil, &ss) != http.StatusOK {
				return false
			}
			for _, s := range ss {
				if s.Kind == usage.SuggestDropMetrics && slices.Equal(s.Metrics, []string{metric}) {
					id = s.ID
					return true
				}
			}
			return false
		}, time.Minute, 500*time.Millisecond, "no drop suggestion for %s", metric)
		return id
	}
	keepID, proposeID := suggestion(uiKeepMetric), suggestion(uiProposeMetric)

	t.Run("reader is not offered propose, approve or reject", func(t *testing.T) {
		b.as(g.reader)
		b.open(base + "/ui/rules")
		assert.Contains(t, b.text("#read-only"), "Propose is not offered")
		assert.Zero(t, b.count("main button"))
		for _, path := range []string{"/ui/suggestions/" + proposeID + "/propose", "/promgov/api/v1/suggestions/" + proposeID + "/propose", "/ui/config/reject", "/promgov/api/v1/config/versions/1/reject"} {
			code, body := g.postForm(t, g.reader, path, url.Values{"version": {"1"}})
			assert.Equal(t, http.StatusForbidden, code, path)
			assert.Contains(t, body, "lacks the admin role", path)
		}
	})

	propose := func(t *testing.T, id, metric string) uint64 {
		b.as(g.admin)
		eventually(t, func(ct *assert.CollectT) bool {
			b.open(base + "/ui/rules")
			return b.count(`form[action="/ui/suggestions/`+id+`/propose"] button`) == 1
		}, 30*time.Second, 500*time.Millisecond, "the rules page never offered to propose %s", metric)
		b.shot("distributor-rules-propose")
		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(`form[action="/ui/suggestions/`+id+`/propose"] button`)), chromedp.WaitVisible(chromedp.CSS("#written"))))
		var n uint64
		_, err := fmt.Sscanf(b.text("#written"), "Version %d written by admin", &n)
		require.NoError(t, err, b.text("#written"))
		return n
	}

	t.Run("propose and reject", func(t *testing.T) {
		n := propose(t, keepID, uiKeepMetric)
		sel := fmt.Sprintf("#proposal-%d", n)
		assert.Contains(t, b.text(sel+" h3"), "drop_metrics "+uiKeepMetric)
		assert.Equal(t, "4", b.text(sel+"-totals td.saved"), "the preview: 4 series saved")
		assert.Contains(t, b.text(sel+"-metrics tbody"), uiKeepMetric)
		b.shot("distributor-config-proposal")
		eventually(t, func(ct *assert.CollectT) bool { return g.shadowOn(ct, n) }, 30*time.Second, 200*time.Millisecond, "the proposal never ran in shadow")
		require.NoError(t, b.run(
			chromedp.SetValue(chromedp.CSS(fmt.Sprintf("#reject-%d", n)), "we chart it next quarter"),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label="Reject version %d"]`, n))),
			chromedp.WaitVisible(chromedp.CSS("#rejected")),
		))
		assert.Contains(t, b.text("#rejected"), fmt.Sprintf("Version %d rejected by admin: we chart it next quarter.", n))
		assert.Contains(t, b.text("#versions tbody"), "rejected by admin")
		assert.Zero(t, b.count(sel), "a rejected proposal is no longer up for review")
		b.shot("distributor-config-proposal-rejected")
		eventually(t, func(ct *assert.CollectT) bool { return g.shadowOn(ct, 0) }, 30*time.Second, 200*time.Millisecond, "the nodes kept running the rejected proposal")
	})

	t.Run("propose and approve", func(t *testing.T) {
		n := propose(t, proposeID, uiProposeMetric)
		// In shadow the metric still reaches Prometheus.
		eventually(t, func(ct *assert.CollectT) bool { return g.shadowOn(ct, n) }, 30*time.Second, 200*time.Millisecond, "the proposal never ran in shadow")
		shadowAt := time.Now()
		eventually(t, func(ct *assert.CollectT) bool { return g.sendUIJobsTraffic(ct, shadowAt) }, 20*time.Second, 200*time.Millisecond, "push never accepted")
		eventually(t, func(ct *assert.CollectT) bool {
			return countAt(ct, g.backend, "count(last_over_time("+uiProposeMetric+"[1ms]))", shadowAt) == 4
		}, 30*time.Second, 200*time.Millisecond, "%s must reach Prometheus while proposed", uiProposeMetric)

		b.open(base + "/ui/config")
		require.NoError(t, b.run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label="Approve and promote version %d"]`, n))), chromedp.WaitVisible(chromedp.CSS("#written"))))
		assert.Contains(t, b.text("#written"), fmt.Sprintf("Version %d written by admin: promote version %d: approve proposal %s.", n+1, n, proposeID))
		b.shot("distributor-config-proposal-approved")
		eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, n+1) }, 30*time.Second, 200*time.Millisecond, "the approved version never reached every node")
		after := time.Now()
		eventually(t, func(ct *assert.CollectT) bool { return g.sendUIJobsTraffic(ct, after) }, 20*time.Second, 200*time.Millisecond, "push never accepted")
		eventually(t, func(ct *assert.CollectT) bool {
			return countAt(ct, g.backend, "count(last_over_time("+uiKeepMetric+"[1ms]))", after) == 4
		}, 30*time.Second, 200*time.Millisecond, "the traffic after the approval never reached Prometheus")
		assert.Zero(t, countAt(t, g.backend, "count(last_over_time("+uiProposeMetric+"[1ms]))", after), "%s still reaches Prometheus after the approval", uiProposeMetric)
	})
}

// shadowOn reports whether every node runs shadow candidate n (0: none).
func (g *uiGovCluster) shadowOn(t T, n uint64) bool {
	var st struct {
		Nodes []struct {
			Shadow uint64 `json:"shadow_version"`
		} `json:"nodes"`
	}
	if g.api(t, g.admin, http.MethodGet, "/promgov/api/v1/status/config", nil, nil, &st) != http.StatusOK || len(st.Nodes) != 1+len(g.ingesters) {
		return false
	}
	for _, node := range st.Nodes {
		if node.Shadow != n {
			return false
		}
	}
	return true
}
