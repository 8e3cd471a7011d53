package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/retro"
)

// TestRetrospectiveSurvivesCoordinatorKill: with a governance store, a job
// accepted by the distributor is queued in the store and run by the
// ingester the ring chooses; that ingester is killed with SIGKILL after a
// couple of batches, and the other one takes the job over once the dead
// one's lease expires, resuming from the checkpoint. The end state is every
// original sample once under its new labels (same timestamps and values),
// nothing left under the old ones, and the job's counts complete.
//
//	promgovctl ──HTTP──▶ distributor ──queue job──▶ governance store (filesystem)
//	                                                 jobs/<id>/job.json, plan.json, control.json
//	                                                    ▲           ▲
//	                              lease + checkpoints   │           │  takes over after the lease
//	                                         ingester-1 (coordinator, kill -9)    ingester-2
//	                                                    │           │
//	                                                    └───────────┴──▶ Prometheus 3.16 (read, remote write, delete)
func TestRetrospectiveSurvivesCoordinatorKill(t *testing.T) {
	t.Parallel()
	b, end, want := startRetroPrometheusWithHistory(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("rules: []\n"), 0o644))
	cand := filepath.Join(dir, "candidate.yml")
	require.NoError(t, os.WriteFile(cand, []byte(retroCandidate), 0o644))
	g := &govCluster{cluster: &cluster{t: t, backend: b, backendProtocol: 1}, cfgPath: cfgPath,
		govArgs: []string{"--config.file=" + cfgPath, "--governance.poll-interval=1m",
			"--governance.store.backend=filesystem", "--governance.store.filesystem.directory=" + filepath.Join(dir, "store"),
			"--retrospective.backend-url=" + b.base(), "--retrospective.batch-series=20",
			"--retrospective.lease-ttl=6s", "--retrospective.scan-interval=500ms"}}
	d := &node{name: "distributor-1", webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
	d.proc = startProcess(t, d.name, filepath.Join(binDir, "distributor"), append([]string{"--web.listen-address=" + d.webAddr,
		"--memberlist.bind-address=" + d.gossipAddr, "--memberlist.node-name=" + d.name,
		"--retrospective.directory=" + filepath.Join(dir, "jobs")}, g.govArgs...)...)
	waitReady(t, d.proc, d.url("/-/healthy"))
	g.dists, g.distributor = []*node{d}, d
	for range 2 {
		g.seq++
		n := &node{name: fmt.Sprintf("ingester-%d", g.seq), webAddr: freeAddr(t), gossipAddr: freeAddr(t), grpcAddr: freeAddr(t),
			walDir: filepath.Join(t.TempDir(), "wal")}
		g.startGovIngester(n)
		g.ingesters = append(g.ingesters, n)
	}
	g.waitActive(2)

	code, out := runCtl(t, d.webAddr, "jobs", "retrospective", "--execute", "--delete-originals", "--max-series-per-second=40", "-o", "json",
		"--candidate="+cand, `--selector={job="retro"}`, "--start="+end.Add(-150*time.Minute).Format(time.RFC3339), "--end="+end.Add(time.Second).Format(time.RFC3339))
	require.Equal(t, 0, code, out)
	var j retro.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, retro.StateQueued, j.State)
	get := func() retro.Job {
		var j2 retro.Job
		apiGet(t, d.url(""), retro.PathJobs+"/"+j.ID, nil, &j2)
		return j2
	}
	var first retro.Job
	require.Eventually(t, func() bool { first = get(); return first.Owner != "" && first.Progress.BatchesDone >= 2 }, 2*time.Minute, 20*time.Millisecond)
	var victim, survivor *node
	for _, n := range g.ingesters {
		if n.name == first.Owner {
			victim = n
		} else {
			survivor = n
		}
	}
	require.NotNil(t, victim, "owner %q is no ingester", first.Owner)
	victim.proc.Kill()
	killed := time.Now()
	require.Less(t, first.Progress.BatchesDone, first.Progress.BatchesTotal, "the job ended before the kill")
	t.Logf("killed %s after %d of %d batches", victim.name, first.Progress.BatchesDone, first.Progress.BatchesTotal)

	var done retro.Job
	require.Eventually(t, func() bool { done = get(); return done.State == retro.StateSucceeded }, 2*time.Minute, 50*time.Millisecond,
		"job never finished: %s", lazy(func() any { return fmt.Sprintf("%+v", get()) }))
	t.Logf("%s finished the job %s after the kill", survivor.name, time.Since(killed).Round(time.Millisecond))
	assert.Contains(t, strings.Join(done.Log, "\n"), "coordinated by "+survivor.name)
	assert.EqualValues(t, 200, done.Progress.SeriesTotal)
	assert.EqualValues(t, 200, done.Progress.SeriesDeleted)
	assert.Equal(t, done.Progress.BatchesTotal, done.Progress.BatchesDone)
	code, out = runCtl(t, d.webAddr, "jobs", "get", j.ID)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "progress: 200/200 series, 10/10 batches")

	got := storedSamples(t, b, retro.KindPrometheus, `http_requests_total`)
	require.Len(t, got, len(want))
	for k, v := range want {
		require.Equal(t, v, got[k], "series %s: every sample once, same timestamps and values", k)
	}
	assert.Empty(t, storedSamples(t, b, retro.KindPrometheus, `http_requests_legacy_total`), "originals deleted")
}
