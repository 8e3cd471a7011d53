package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/usage"
)

// The test jobs: a dry run whose example has a hostile label value, and a
// paused execution of 100 batches, 40 done.
const (
	testJobDry  = "20260101T000000-aaaaaaaa"
	testJobExec = "20260101T000100-bbbbbbbb"
)

// newTestJobs returns a jobs manager (not running) over the two test jobs
// and n-2 finished ones, as a distributor loads them from its directory.
func newTestJobs(tb testing.TB, n int) *retro.Manager {
	tb.Helper()
	dir := tb.TempDir()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spec := retro.Spec{Selector: `{job="api"}`, Start: start.Add(-2 * time.Hour), End: start, Mode: retro.ModeDryRun,
		Backend: &retro.HTTPBackendConfig{Kind: retro.KindPrometheus, URL: "http://prometheus:9090"}, Throttles: retro.Throttles{MaxConcurrency: 1}}
	dry := retro.Job{ID: testJobDry, Spec: spec, Rules: "rules:\n- name: rename\n", State: retro.StateSucceeded, Created: start, Updated: start,
		DryRun: &retro.DryRun{SeriesMatched: 3, SeriesAffected: 2, SeriesRenamed: 2, TargetSeries: 2, SamplesAffected: 480, SamplesRewritten: 480,
			Examples: []retro.Example{{Action: "rewrite", Rule: "rename",
				Before: map[string]string{"__name__": "legacy_total", "path": hostile},
				After:  map[string]string{"__name__": "new_total", "path": hostile}}}}}
	exec := dry
	exec.ID, exec.State, exec.Error = testJobExec, retro.StatePaused, "batch 40: backend answered 503"
	exec.Spec.Mode, exec.Spec.DeleteOriginals = retro.ModeExecute, true
	exec.Progress = retro.Progress{SeriesTotal: 10000, SeriesDone: 4000, SamplesTotal: 2400000, SamplesRead: 960000, SamplesWritten: 960000,
		SeriesDeleted: 4000, BatchesTotal: 100, BatchesDone: 40, SamplesPerSecond: 12000, SeriesPerSecond: 50, ETASeconds: 120}
	exec.Done = make([]bool, 100)
	for i := range 40 {
		exec.Done[i] = true
		exec.Log = append(exec.Log, fmt.Sprintf("2026-01-01T00:01:%02dZ batch %d: 100 series, read 24000 samples, wrote 24000, deleted 100 series (read 8ms, write 80ms, verify 7ms, delete 16ms)", i, i))
	}
	exec.Log = append(exec.Log, "2026-01-01T00:02:00Z paused: batch 40: backend answered 503")
	jobs := []retro.Job{dry, exec}
	for i := range max(0, n-2) {
		j := dry
		j.ID = fmt.Sprintf("20250101T%06d-cccccccc", i)
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		require.NoError(tb, os.MkdirAll(filepath.Join(dir, j.ID), 0o755))
		b, err := json.Marshal(j)
		require.NoError(tb, err)
		require.NoError(tb, os.WriteFile(filepath.Join(dir, j.ID, "job.json"), b, 0o644))
	}
	cfg := retro.DefaultConfig()
	cfg.Directory = dir
	m, err := retro.NewManager(retro.ManagerDeps{Config: cfg, Backend: spec.Backend})
	require.NoError(tb, err)
	return m
}

func TestJobsPages(t *testing.T) {
	c := newTestCluster(t, 5)
	list := c.get(t, PathJobs)
	require.Contains(t, list, `<a href="/ui/jobs/`+testJobExec+`">`)
	require.Less(t, strings.Index(list, testJobExec), strings.Index(list, testJobDry), "newest first")
	require.Contains(t, list, "4000 / 10000", "series done / total")
	require.Contains(t, list, `value="40"`, "the progress bar")
	require.Contains(t, list, "batch 40: backend answered 503", "the error")
	require.Contains(t, list, `aria-label="Resume job `+testJobExec+`"`)
	require.Contains(t, list, `aria-label="Cancel job `+testJobExec+`"`, "a paused job may be cancelled")
	require.NotContains(t, list, `aria-label="Cancel job `+testJobDry+`"`, "a finished job is not")
	require.NotContains(t, list, `http-equiv="refresh"`, "nothing moves: no job runs")

	dry := c.get(t, PathJobs+"/"+testJobDry)
	require.NotContains(t, dry, hostile, "a label value is escaped")
	require.Contains(t, dry, `legacy_total{path=&#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;}`)
	require.Contains(t, dry, "3 series matched, 0 unchanged, 2 affected")

	exec := c.get(t, PathJobs+"/"+testJobExec)
	require.Equal(t, 40, strings.Count(exec, `class="bdone"`), "the done batches")
	require.Equal(t, 60, strings.Count(exec, `class="bpending"`))
	require.Contains(t, exec, "batch 39: 100 series, read 24000 samples")
	require.Contains(t, exec, "paused: batch 40", "the other log lines")
	require.Contains(t, exec, "http://prometheus:9090")

	t.Run("resume and cancel", func(t *testing.T) {
		rec := c.form(t, PathJobs+"/"+testJobExec+"/resume", nil)
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		page := c.get(t, rec.Header().Get("Location"))
		require.Contains(t, page, "Job resumed: it is now queued.")
		require.Contains(t, page, `http-equiv="refresh"`, "a queued job reloads its page")
		rec = c.form(t, PathJobs+"/"+testJobExec+"/cancel", nil)
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Contains(t, c.get(t, rec.Header().Get("Location")), "Job cancelled: it is now cancelled.")
		rec = c.form(t, PathJobs+"/"+testJobExec+"/cancel", nil)
		require.Equal(t, http.StatusConflict, rec.Code, "the API's refusal")
		require.Contains(t, rec.Body.String(), "is cancelled")
		require.Equal(t, http.StatusNotFound, c.form(t, PathJobs+"/"+testJobExec+"/delete", nil).Code)
		require.Equal(t, http.StatusNotFound, c.send(t, http.MethodGet, PathJobs+"/20990101T000000-00000000", "", nil).Code)
	})
	t.Run("cross-site form is refused", func(t *testing.T) {
		rec := c.send(t, http.MethodPost, PathJobs+"/"+testJobExec+"/resume", "", map[string]string{"Sec-Fetch-Site": "cross-site"})
		require.Equal(t, http.StatusForbidden, rec.Code)
	})
	t.Run("read-only viewer", func(t *testing.T) {
		c.ui.d.Permits = func(*http.Request, string, string) (string, error) {
			return "reader", errors.New(`identity "reader" lacks the admin role this action needs`)
		}
		defer func() { c.ui.d.Permits = nil }()
		for _, p := range []string{PathJobs, PathJobs + "/" + testJobExec} {
			page := c.get(t, p)
			require.NotContains(t, page, "<button", p)
			require.Contains(t, page, `Read-only: identity &#34;reader&#34; lacks the admin role`, p)
		}
		rec := c.form(t, PathJobs+"/"+testJobExec+"/resume", nil)
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Contains(t, rec.Body.String(), "not resumed: identity &#34;reader&#34; lacks the admin role")
		require.Contains(t, c.get(t, PathJobs+"/"+testJobExec), "state <span class=\"state job-cancelled\">cancelled</span>", "nothing changed")
	})
}

// proposal writes a shadow version with a kept proposal (what POST
// .../suggestions/{id}/propose writes) on the test cluster's store.
func (c *testCluster) proposal(tb testing.TB) uint64 {
	tb.Helper()
	ctx := tb.Context()
	head, err := c.store.Head(ctx)
	require.NoError(tb, err)
	if head == 0 {
		_, err := c.store.Write(ctx, govstore.WriteRequest{Body: []byte(govDoc1), IfMatch: 0, Author: "seed"})
		require.NoError(tb, err)
		head = 1
	}
	body := govDoc1 + "  - name: suggestion-0123456789ab\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: evil_.*\n        action: drop\n"
	v, err := c.store.Write(ctx, govstore.WriteRequest{Body: []byte(body), IfMatch: head, Author: "alice", Mode: govstore.ModeShadow, Message: "proposal from suggestion 0123456789ab"})
	require.NoError(tb, err)
	p := preview.Proposal{Version: v.Metadata(), Suggestion: usage.Suggestion{ID: "0123456789ab", Kind: usage.SuggestDropMetrics, Metrics: []string{"evil_" + hostile}, SeriesSaved: 20},
		Preview: preview.Data{Totals: preview.Totals{SeriesBefore: 1000, SeriesAfter: 980, SeriesSaved: 20, SeriesDropped: 20, SamplesRateBefore: 100, SamplesRateAfter: 98, MetricsChanged: 1},
			Metrics:       []preview.Metric{{Tenant: "team-a", Metric: "evil_" + hostile, SeriesBefore: 20, SamplesRateBefore: 2}},
			SampledSeries: 1000, SampledMetrics: 5, Ingesters: 2}}
	b, err := json.Marshal(p)
	require.NoError(tb, err)
	require.NoError(tb, c.store.SaveProposal(ctx, v.Number, b))
	return v.Number
}

func TestProposalReview(t *testing.T) {
	c := newTestCluster(t, 5)
	n := c.proposal(t)
	require.EqualValues(t, 2, n)
	page := c.get(t, PathConfig)
	require.Contains(t, page, `id="proposal-2"`)
	require.Contains(t, page, `<td class="num saved">20</td>`, "the series saved")
	require.NotContains(t, page, hostile, "the metric name is escaped")
	require.Contains(t, page, "evil_&lt;script&gt;")
	require.Contains(t, page, `aria-label="Approve and promote version 2"`)
	require.Contains(t, page, `aria-label="Reject version 2"`)

	rules := c.get(t, PathRules)
	require.Contains(t, rules, `action="/ui/suggestions/`, "each suggestion may be proposed")

	t.Run("reject", func(t *testing.T) {
		rec := c.form(t, PathConfigReject, url.Values{"version": {"2"}, "message": {"saves too little"}})
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		require.Equal(t, PathConfig+"?rejected=2", rec.Header().Get("Location"))
		page := c.get(t, rec.Header().Get("Location"))
		require.Contains(t, page, "Version 2 rejected by anonymous: saves too little.")
		require.Contains(t, page, "rejected by anonymous: saves too little</span>", "the version's status")
		require.NotContains(t, page, `id="proposal-2"`, "a rejected proposal is no longer up for review")
		require.NotContains(t, page, `aria-label="Promote version 2"`)
		st, err := c.store.Resolve(t.Context())
		require.NoError(t, err)
		require.Nil(t, st.Shadow, "no node stages it")
		require.EqualValues(t, 1, st.Active.Number, "the active version stays")
		rec = c.form(t, PathConfigReject, url.Values{"version": {"1"}})
		require.Equal(t, http.StatusBadRequest, rec.Code, "an enforce version is rolled back, not rejected")
		require.Contains(t, rec.Body.String(), "only shadow candidates are rejected")
	})
	t.Run("approve", func(t *testing.T) {
		n := c.proposal(t)
		rec := c.form(t, PathConfigPromote, url.Values{"version": {fmt.Sprint(n)}, "if_match": {fmt.Sprint(n)}, "message": {"approve proposal 0123456789ab"}})
		require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
		page := c.get(t, rec.Header().Get("Location"))
		require.Contains(t, page, fmt.Sprintf("Version %d written by anonymous: promote version %d: approve proposal 0123456789ab.", n+1, n))
		require.NotContains(t, page, `class="proposal"`, "an approved proposal is no longer up for review")
	})
	t.Run("read-only viewer", func(t *testing.T) {
		c.proposal(t)
		c.ui.d.Permits = func(*http.Request, string, string) (string, error) {
			return "reader", errors.New(`identity "reader" lacks the admin role this action needs`)
		}
		defer func() { c.ui.d.Permits = nil }()
		page := c.get(t, PathConfig)
		require.Contains(t, page, `class="proposal"`, "a reader sees the preview")
		require.NotContains(t, page, "<button")
		rules := c.get(t, PathRules)
		require.NotContains(t, rules, `action="/ui/suggestions/`)
		require.Contains(t, rules, "Propose is not offered")
		for _, p := range []string{PathConfigReject, PathSuggestions + "/0123456789ab/propose"} {
			rec := c.form(t, p, url.Values{"version": {"5"}})
			require.Equal(t, http.StatusForbidden, rec.Code, p)
			require.Contains(t, rec.Body.String(), "lacks the admin role", p)
		}
	})
}
