package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
)

// retroCandidate renames http_requests_legacy_total and normalises ids in
// its path label.
const retroCandidate = `rules:
- name: rename-legacy
  relabel_configs:
  - source_labels: [__name__]
    regex: http_requests_legacy_total
    target_label: __name__
    replacement: http_requests_total
- name: normalise-path
  action: rewrite
  labels:
    normalize:
    - labels: [path]
      builtin: [number]
`

// retroHistory is what loadRetroHistory wrote: rendered labels → samples.
type retroHistory map[string][][2]string

const (
	retroInstances = 20
	retroTemplates = 10
	retroStep      = 30 * time.Second
	retroSamples   = 240 // 2 h
	retroUnchanged = 10
)

var retroPaths = []string{"/users/%d/orders", "/items/%d", "/carts/%d/lines", "/orders/%d", "/accounts/%d/keys",
	"/teams/%d", "/teams/%d/members", "/invoices/%d", "/sessions/%d", "/reports/%d/pages"}

// loadRetroHistory remote-writes 2 h of history (retroSamples per series)
// ending at end for 200 legacy series and retroUnchanged series no rule
// changes, and returns the legacy series' samples under their new labels.
func loadRetroHistory(t *testing.T, writeURL string, end time.Time) retroHistory {
	t.Helper()
	want := retroHistory{}
	var wr prompb.WriteRequest
	first := end.Add(-retroStep * (retroSamples - 1)).Truncate(time.Second)
	add := func(lbls []prompb.Label, newLabels map[string]string, seed int) {
		ts := prompb.TimeSeries{Labels: lbls}
		var vals [][2]string
		for k := 0; k < retroSamples; k++ {
			tm := first.Add(time.Duration(k) * retroStep).UnixMilli()
			v := float64(seed*1000+k) + 0.25
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: tm, Value: v})
			vals = append(vals, [2]string{strconv.FormatInt(tm, 10), strconv.FormatFloat(v, 'f', -1, 64)})
		}
		wr.Timeseries = append(wr.Timeseries, ts)
		if newLabels != nil {
			want[renderLabels(newLabels)] = vals
		}
	}
	n := 0
	for i := 0; i < retroInstances; i++ {
		for p, tmpl := range retroPaths {
			id := 1000 + i*37 + p*1009
			inst := fmt.Sprintf("10.0.0.%d:9100", i)
			add([]prompb.Label{{Name: "__name__", Value: "http_requests_legacy_total"}, {Name: "instance", Value: inst}, {Name: "job", Value: "retro"}, {Name: "path", Value: fmt.Sprintf(tmpl, id)}},
				map[string]string{"__name__": "http_requests_total", "instance": inst, "job": "retro", "path": strings.ReplaceAll(tmpl, "%d", ":id")}, n)
			n++
		}
	}
	for i := 0; i < retroUnchanged; i++ {
		add([]prompb.Label{{Name: "__name__", Value: "process_open_fds"}, {Name: "instance", Value: fmt.Sprintf("10.0.1.%d:9100", i)}, {Name: "job", Value: "retro"}}, nil, n)
		n++
	}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	code, _, body := postRW(t, writeURL, "application/x-protobuf", snappy.Encode(nil, raw), map[string]string{"X-Prometheus-Remote-Write-Version": "0.1.0"})
	require.Less(t, code, 300, "load history: %s", body)
	return want
}

// startRetroPrometheus starts Prometheus 3.16 with a 3 h out-of-order window
// and, when admin is set, the admin API.
func startRetroPrometheus(t *testing.T, admin bool) *backend {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("storage:\n  tsdb:\n    out_of_order_time_window: 3h\n"), 0o644))
	args := []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=1d"}
	if admin {
		args = append(args, "--web.enable-admin-api")
	}
	p := startProcess(t, "prometheus", prometheus, args...)
	waitReady(t, p, "http://"+addr+"/-/ready")
	return &backend{proc: p, addr: addr}
}

// startRetroPrometheusWithHistory starts Prometheus with the admin API,
// loads the history (loadRetroHistory) ending now, and waits until every
// series is readable.
func startRetroPrometheusWithHistory(t *testing.T) (b *backend, end time.Time, want retroHistory) {
	t.Helper()
	b = startRetroPrometheus(t, true)
	end = time.Now()
	want = loadRetroHistory(t, b.writeURL(), end)
	eventually(t, func(ct *assert.CollectT) bool {
		return assert.Len(ct, storedSamples(ct, b, retro.KindPrometheus, `{job="retro"}`), retroInstances*retroTemplates+retroUnchanged)
	}, time.Minute, 200*time.Millisecond)
	return b, end, want
}

// storedSamples returns every sample of the series selector matches, by
// rendered labels: Prometheus through a range query, VictoriaMetrics through
// /api/v1/export.
func storedSamples(t T, b *backend, kind, selector string) retroHistory {
	t.Helper()
	out := retroHistory{}
	if kind == retro.KindPrometheus {
		var data struct {
			Result []rangeSeries `json:"result"`
		}
		apiGet(t, b.base(), "/api/v1/query", url.Values{"query": {selector + "[3h]"}, "time": {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)}}, &data)
		for _, s := range data.Result {
			var vals [][2]string
			for _, v := range s.Values {
				ms := int64(v[0].(float64)*1000 + 0.5)
				vals = append(vals, [2]string{strconv.FormatInt(ms, 10), v[1].(string)})
			}
			out[renderLabels(s.Metric)] = vals
		}
		return out
	}
	resp, err := b.httpClient().Get(b.base() + "/api/v1/export?" + url.Values{"match[]": {selector}, "start": {"0"}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		var vals [][2]string
		for i := range line.Values {
			vals = append(vals, [2]string{strconv.FormatInt(line.Timestamps[i], 10), strconv.FormatFloat(line.Values[i], 'f', -1, 64)})
		}
		out[renderLabels(line.Metric)] = vals
	}
	require.NoError(t, sc.Err())
	return out
}

// startRetroManager runs a job manager on be in the test process.
func startRetroManager(t *testing.T, kind, base string) *retro.Manager {
	t.Helper()
	cfg := retro.DefaultConfig()
	cfg.Directory = t.TempDir()
	cfg.VerifyTimeout = time.Minute
	cfg.BatchSeries = 20
	cfg.Slice = time.Hour // 2.5 h ranges: 3 slices per batch
	m, err := retro.NewManager(retro.ManagerDeps{Config: cfg, Backend: &retro.HTTPBackendConfig{Kind: kind, URL: base}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return m
}

func waitJob(t *testing.T, m *retro.Manager, id string, states ...string) *retro.Job {
	t.Helper()
	var j *retro.Job
	require.Eventually(t, func() bool {
		var err error
		j, err = m.Get(id)
		require.NoError(t, err)
		for _, s := range states {
			if j.State == s {
				return true
			}
		}
		return false
	}, 3*time.Minute, 50*time.Millisecond, "job %s never reached %v", id, states)
	return j
}

// TestRetrospectiveRewrite: 2 h of history for 200 series, a rule that
// renames the metric and normalises ids in path; the dry run counts exactly,
// the execution leaves every sample under its new labels with its timestamp
// and value, and the originals are gone. Against Prometheus 3.16 and
// VictoriaMetrics.
func TestRetrospectiveRewrite(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{retro.KindPrometheus, retro.KindVictoriaMetrics} {
		t.Run(kind, func(t *testing.T) {
			var b *backend
			if kind == retro.KindPrometheus {
				b = startRetroPrometheus(t, true)
			} else {
				b = startVictoriaMetrics(t)
			}
			end := time.Now()
			want := loadRetroHistory(t, b.writeURL(), end)
			require.Len(t, want, retroInstances*retroTemplates)
			eventually(t, func(ct *assert.CollectT) bool {
				return assert.Len(ct, storedSamples(ct, b, kind, `{job="retro"}`), retroInstances*retroTemplates+retroUnchanged)
			}, time.Minute, 200*time.Millisecond)
			m := startRetroManager(t, kind, b.base())
			spec := retro.Spec{Candidate: retroCandidate, Selector: `{job="retro"}`, Start: end.Add(-150 * time.Minute), End: end.Add(time.Second)}

			j, err := m.Submit(context.Background(), spec)
			require.NoError(t, err)
			j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
			require.Equal(t, retro.StateSucceeded, j.State, "dry run: %s", j.Error)
			dr := j.DryRun
			assert.EqualValues(t, 210, dr.SeriesMatched)
			assert.EqualValues(t, 10, dr.SeriesUnchanged)
			assert.EqualValues(t, 200, dr.SeriesAffected)
			assert.EqualValues(t, 200, dr.SeriesRenamed)
			assert.EqualValues(t, 200, dr.SeriesRelabelled)
			assert.EqualValues(t, 0, dr.SeriesDropped)
			assert.EqualValues(t, 0, dr.SeriesMerged)
			assert.EqualValues(t, 200, dr.TargetSeries)
			assert.EqualValues(t, 200*retroSamples, dr.SamplesAffected)
			assert.Len(t, dr.Examples, 10)
			assert.Empty(t, storedSamples(t, b, kind, `http_requests_total`), "a dry run wrote")

			spec.Mode, spec.DeleteOriginals = retro.ModeExecute, true
			spec.CleanTombstones = kind == retro.KindPrometheus
			spec.Throttles.MaxConcurrency = 4
			j, err = m.Submit(context.Background(), spec)
			require.NoError(t, err)
			j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
			require.Equal(t, retro.StateSucceeded, j.State, "execute: %s\n%s", j.Error, strings.Join(j.Log, "\n"))
			p := j.Progress
			t.Logf("%s: %d series, %d samples in %d batches at %.0f series/s, %.0f samples/s (throttles off, 4 batches of 20 series at a time)",
				kind, p.SeriesDone, p.SamplesWritten, p.BatchesDone, p.SeriesPerSecond, p.SamplesPerSecond)
			t.Logf("%s", strings.Join(j.Log, "\n"))
			assert.EqualValues(t, 200, p.SeriesDone)
			assert.EqualValues(t, 200*retroSamples, p.SamplesWritten)
			assert.EqualValues(t, 200, p.SeriesDeleted)
			if spec.CleanTombstones {
				assert.Contains(t, strings.Join(j.Log, "\n"), "tombstones cleaned")
			}

			got := storedSamples(t, b, kind, `http_requests_total`)
			require.Len(t, got, len(want))
			for k, v := range want {
				require.Equal(t, v, got[k], "series %s", k)
			}
			assert.Empty(t, storedSamples(t, b, kind, `http_requests_legacy_total`), "originals left")
			assert.Len(t, storedSamples(t, b, kind, `process_open_fds`), retroUnchanged, "unchanged series touched")
		})
	}
}

// TestRetrospectiveRefusesWithoutAdminAPI: a Prometheus without
// --web.enable-admin-api refuses an execution with deletes before anything
// is written.
func TestRetrospectiveRefusesWithoutAdminAPI(t *testing.T) {
	t.Parallel()
	b := startRetroPrometheus(t, false)
	end := time.Now()
	loadRetroHistory(t, b.writeURL(), end)
	m := startRetroManager(t, retro.KindPrometheus, b.base())
	_, err := m.Submit(context.Background(), retro.Spec{Candidate: retroCandidate, Selector: `{job="retro"}`,
		Start: end.Add(-150 * time.Minute), End: end, Mode: retro.ModeExecute, DeleteOriginals: true})
	var bad *retro.BadRequestError
	require.ErrorAs(t, err, &bad)
	require.ErrorIs(t, err, retro.ErrAdminDisabled)
	assert.Contains(t, err.Error(), "--web.enable-admin-api")
	assert.Empty(t, m.List(), "a refused job was kept")
	assert.Empty(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_total`), "something was written")
	assert.Len(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_legacy_total`), 200)
}

// TestRetrospectiveQueryAPIBackend: a backend of kind thanos (or mimir) is
// read through the Prometheus query API, which Thanos Query and Mimir
// serve; here Prometheus 3.16 serves it (neither Thanos nor Mimir runs on
// this machine). The dry run counts exactly as through remote read; an
// execution with delete_originals is refused before anything is written,
// naming the step and the operator's route; a copy-only execution with a
// write_url copies every sample and leaves the originals.
func TestRetrospectiveQueryAPIBackend(t *testing.T) {
	t.Parallel()
	b, end, want := startRetroPrometheusWithHistory(t)
	m := startRetroManager(t, retro.KindThanos, b.base())
	spec := retro.Spec{Candidate: retroCandidate, Selector: `{job="retro"}`, Start: end.Add(-150 * time.Minute), End: end.Add(time.Second)}
	j, err := m.Submit(context.Background(), spec)
	require.NoError(t, err)
	j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
	require.Equal(t, retro.StateSucceeded, j.State, "dry run: %s", j.Error)
	assert.EqualValues(t, 210, j.DryRun.SeriesMatched)
	assert.EqualValues(t, 200, j.DryRun.SeriesAffected)
	assert.EqualValues(t, 200*retroSamples, j.DryRun.SamplesAffected)

	spec.Mode, spec.DeleteOriginals, spec.Throttles.MaxConcurrency = retro.ModeExecute, true, 4
	_, err = m.Submit(context.Background(), spec)
	var bad *retro.BadRequestError
	require.ErrorAs(t, err, &bad)
	require.ErrorIs(t, err, retro.ErrUnsupported)
	assert.ErrorContains(t, err, "thanos tools bucket rewrite")
	spec.DeleteOriginals = false
	_, err = m.Submit(context.Background(), spec)
	require.ErrorAs(t, err, &bad)
	assert.ErrorContains(t, err, "backend.write_url is required")
	assert.Empty(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_total`), "a refused job wrote")

	spec.Backend = &retro.HTTPBackendConfig{Kind: retro.KindThanos, URL: b.base(), WriteURL: b.writeURL()}
	j, err = m.Submit(context.Background(), spec)
	require.NoError(t, err)
	j = waitJob(t, m, j.ID, retro.StateSucceeded, retro.StatePaused, retro.StateFailed)
	require.Equal(t, retro.StateSucceeded, j.State, "execute: %s\n%s", j.Error, strings.Join(j.Log, "\n"))
	p := j.Progress
	t.Logf("thanos (query API of Prometheus 3.16): %d series, %d samples at %.0f series/s, %.0f samples/s (copy and verify, no delete)", p.SeriesDone, p.SamplesWritten, p.SeriesPerSecond, p.SamplesPerSecond)
	assert.EqualValues(t, 200*retroSamples, p.SamplesWritten)
	assert.Zero(t, p.SeriesDeleted)
	got := storedSamples(t, b, retro.KindPrometheus, `http_requests_total`)
	require.Len(t, got, len(want))
	for k, v := range want {
		require.Equal(t, v, got[k], "series %s", k)
	}
	assert.Len(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_legacy_total`), 200, "originals deleted")
}
