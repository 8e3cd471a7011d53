package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
)

// runCtl runs promgovctl against the distributor at addr and returns its
// exit code and output.
func runCtl(t *testing.T, addr string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "promgovctl"), append([]string{"--address=http://" + addr, "--user=ci"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("$ promgovctl %s → exit %d\n%s", strings.Join(args, " "), code, out.String())
	return code, out.String()
}

// startRetroDistributor starts a distributor whose retrospective jobs live
// in dir and run against backendURL.
func startRetroDistributor(t *testing.T, webAddr, gossipAddr, dir, backendURL string) *process {
	t.Helper()
	p := startProcess(t, "distributor", filepath.Join(binDir, "distributor"),
		"--web.listen-address="+webAddr,
		"--memberlist.bind-address="+gossipAddr,
		"--memberlist.node-name=distributor",
		"--retrospective.directory="+dir,
		"--retrospective.backend-url="+backendURL,
		"--retrospective.batch-series=20",
	)
	waitReady(t, p, "http://"+webAddr+"/-/healthy")
	return p
}

// TestRetrospectiveResumesAfterKill: a dry run and an execution through
// promgovctl and a distributor; the distributor running the job is killed
// with SIGKILL in the middle, at which point no sample is lost (every
// series is whole under its old or its new labels); restarted on the same
// job directory it resumes from the checkpoint, and the end state is every
// sample under its new labels, once, with nothing left under the old ones.
func TestRetrospectiveResumesAfterKill(t *testing.T) {
	t.Parallel()
	b := startRetroPrometheus(t, true)
	end := time.Now()
	want := loadRetroHistory(t, b.writeURL(), end)
	eventually(t, func(ct *assert.CollectT) bool {
		return assert.Len(ct, storedSamples(ct, b, retro.KindPrometheus, `{job="retro"}`), 210)
	}, time.Minute, 200*time.Millisecond)
	cand := filepath.Join(t.TempDir(), "candidate.yml")
	require.NoError(t, os.WriteFile(cand, []byte(retroCandidate), 0o644))
	dir := t.TempDir()
	webAddr, gossipAddr := freeAddr(t), freeAddr(t)
	d := startRetroDistributor(t, webAddr, gossipAddr, dir, b.base())
	rangeArgs := []string{"--candidate=" + cand, `--selector={job="retro"}`, "--start=" + end.Add(-150*time.Minute).Format(time.RFC3339), "--end=" + end.Add(time.Second).Format(time.RFC3339)}

	code, out := runCtl(t, webAddr, append([]string{"jobs", "retrospective", "--wait"}, rangeArgs...)...)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "dry run: 210 series matched, 10 unchanged, 200 affected (200 renamed, 200 relabelled, 0 dropped, 0 merged) into 200 series; 48000 samples")

	code, out = runCtl(t, webAddr, "jobs", "retrospective", "--selector=up{", "--start=1h")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "selector")

	code, out = runCtl(t, webAddr, append([]string{"jobs", "retrospective", "--execute", "--delete-originals", "--max-series-per-second=40", "-o", "json"}, rangeArgs...)...)
	require.Equal(t, 0, code, out)
	var j retro.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	get := func() retro.Job {
		var j2 retro.Job
		apiGet(t, "http://"+webAddr, retro.PathJobs+"/"+j.ID, nil, &j2)
		return j2
	}
	require.Eventually(t, func() bool { return get().Progress.BatchesDone >= 2 }, 2*time.Minute, 20*time.Millisecond)
	d.Kill()
	// Nothing lost: every series is whole under its new labels or its old ones.
	moved := storedSamples(t, b, retro.KindPrometheus, `http_requests_total`)
	left := 0
	for k, v := range storedSamples(t, b, retro.KindPrometheus, `http_requests_legacy_total`) {
		assert.Len(t, v, retroSamples, "original %s partly deleted", k)
		left++
	}
	for k, v := range moved {
		if len(v) == retroSamples {
			assert.Equal(t, want[k], v, "copy of %s", k)
		}
	}
	assert.GreaterOrEqual(t, len(moved)+left, 200)
	require.Greater(t, left, 0, "the job ended before the kill")
	t.Logf("killed with %d series copied and %d originals left", len(moved), left)

	startRetroDistributor(t, webAddr, gossipAddr, dir, b.base())
	require.Eventually(t, func() bool { return get().State == retro.StateSucceeded }, 2*time.Minute, 50*time.Millisecond)
	code, out = runCtl(t, webAddr, "jobs", "get", j.ID)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "progress: 200/200 series, 10/10 batches")
	assert.Contains(t, out, "resuming")
	code, out = runCtl(t, webAddr, "jobs", "list")
	require.Equal(t, 0, code)
	assert.Equal(t, 3, strings.Count(out, "\n"), out) // header and two jobs

	got := storedSamples(t, b, retro.KindPrometheus, `http_requests_total`)
	require.Len(t, got, len(want))
	for k, v := range want {
		require.Equal(t, v, got[k], "series %s", k)
	}
	assert.Empty(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_legacy_total`))
}
