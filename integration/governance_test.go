package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/testweed"
)

// govCluster is 2 distributors and 2 ingesters sharing a governance store
// in a real S3 server (SeaweedFS), forwarding to a real Prometheus.
type govCluster struct {
	*cluster
	dists   []*node
	govArgs []string
	cfgPath string
}

func govRule(regex string) string {
	return "rules:\n  - name: drop-" + strings.TrimSuffix(regex, "_.*") + "\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: " + regex + "\n        action: drop\n"
}

// startGovCluster starts 2 distributors (with distArgs too) and 2
// ingesters on a governance store in a real S3 server (SeaweedFS).
func startGovCluster(t *testing.T, distArgs ...string) *govCluster {
	t.Helper()
	requireIntegration(t)
	weed := testweed.Start(t, "promgov-gov")
	return startGovClusterWith(t, 2, distArgs, "--governance.store.backend=s3", "--governance.store.s3.bucket=promgov-gov",
		"--governance.store.s3.endpoint="+weed.Endpoint, "--governance.store.s3.access-key="+testweed.AccessKey,
		"--governance.store.s3.secret-key="+testweed.SecretKey, "--governance.store.s3.insecure",
		"--governance.store.s3.region=us-east-1")
}

// startGovClusterWith starts dists distributors (with distArgs too) and 2
// ingesters on the governance store of storeArgs, seeded with no rules.
func startGovClusterWith(t *testing.T, dists int, distArgs []string, storeArgs ...string) *govCluster {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "promgov.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("rules: []\n"), 0o644))
	g := &govCluster{cluster: &cluster{t: t, backend: startBackend(t), backendProtocol: 1}, cfgPath: cfgPath,
		govArgs: append([]string{"--config.file=" + cfgPath, "--governance.poll-interval=1m"}, storeArgs...)}
	for i := range dists {
		n := &node{name: fmt.Sprintf("distributor-%d", i+1), webAddr: freeAddr(t), gossipAddr: freeAddr(t)}
		args := append([]string{"--web.listen-address=" + n.webAddr, "--memberlist.bind-address=" + n.gossipAddr,
			"--memberlist.node-name=" + n.name, "--distributor.push-timeout=5s"}, append(slices.Clone(distArgs), g.govArgs...)...)
		if i > 0 {
			args = append(args, "--memberlist.join="+g.dists[0].gossipAddr)
		}
		n.proc = startProcess(t, n.name, filepath.Join(binDir, "distributor"), args...)
		g.dists = append(g.dists, n)
	}
	g.distributor = g.dists[0]
	for range 2 {
		g.seq++
		n := &node{name: fmt.Sprintf("ingester-%d", g.seq), webAddr: freeAddr(t), gossipAddr: freeAddr(t), grpcAddr: freeAddr(t),
			walDir: filepath.Join(t.TempDir(), "wal")}
		g.startGovIngester(n)
		g.ingesters = append(g.ingesters, n)
	}
	g.waitActive(2)
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range append(slices.Clone(g.dists), g.ingesters...) {
				resp, err := http.Get(d.url("/promgov/api/v1/status/config"))
				if err == nil {
					var b bytes.Buffer
					_, _ = b.ReadFrom(resp.Body)
					resp.Body.Close()
					t.Logf("%s status/config: %d %s", d.name, resp.StatusCode, b.String())
				}
			}
		}
	})
	return g
}

func (g *govCluster) startGovIngester(n *node) {
	args := append([]string{"--web.listen-address=" + n.webAddr, "--grpc.listen-address=" + n.grpcAddr,
		"--memberlist.bind-address=" + n.gossipAddr, "--memberlist.join=" + g.dists[0].gossipAddr,
		"--memberlist.node-name=" + n.name, "--wal.dir=" + n.walDir, "--backend.url=" + g.backend.writeURL(),
		"--backend.protocol=1", "--forward.batch-send-deadline=200ms", "--ingester.leave-drain-period=1s"}, g.govArgs...)
	n.proc = startProcess(g.t, n.name, filepath.Join(binDir, "ingester"), args...)
	waitReady(g.t, n.proc, n.url("/-/ready"))
}

// govStatus is GET /promgov/api/v1/status/config.
type govStatus struct {
	Self   string `json:"self"`
	Active uint64 `json:"active_version"`
	Shadow uint64 `json:"shadow_version"`
	Nodes  []struct {
		Node    string `json:"node"`
		Version uint64 `json:"version"`
		Shadow  uint64 `json:"shadow_version"`
	} `json:"nodes"`
	ShadowRun *struct {
		Rules []string `json:"rules"`
	} `json:"shadow_run"`
	Laggards []string `json:"laggards"`
}

func (g *govCluster) status(t T, n *node) govStatus {
	var s govStatus
	apiGet(t, "http://"+n.webAddr, "/promgov/api/v1/status/config", nil, &s)
	return s
}

// allOn reports whether every node runs version v with no shadow
// candidate, as distributor 1 sees them.
func (g *govCluster) allOn(t T, v uint64) bool { return g.allOnShadow(t, v, 0) }

// allOnShadow reports whether every node runs version v with shadow
// candidate sh beside it (0: none).
func (g *govCluster) allOnShadow(t T, v, sh uint64) bool {
	s := g.status(t, g.dists[0])
	if len(s.Nodes) != len(g.dists)+len(g.ingesters) {
		return false
	}
	for _, n := range s.Nodes {
		if n.Version != v || n.Shadow != sh {
			return false
		}
	}
	return true
}

// ctl runs promgovctl against distributor 1 and returns its exit code and
// output.
func (g *govCluster) ctl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runCtl(t, g.dists[0].webAddr, args...)
}

// ctlQuiet is ctl without logging, for polling; it returns stdout only.
func (g *govCluster) ctlQuiet(args ...string) (int, string) {
	cmd := exec.Command(filepath.Join(binDir, "promgovctl"), append([]string{"--address=http://" + g.dists[0].webAddr, "--user=ci"}, args...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		return -1, err.Error()
	}
	return 0, string(out)
}

// writeVia writes one sample of each series through distributor d.
func (g *govCluster) writeVia(t *testing.T, d *node, ts time.Time, series ...[]string) {
	t.Helper()
	saved := g.distributor
	g.distributor = d
	defer func() { g.distributor = saved }()
	writeV1(t, g.cluster, ts, series...)
}

// enforced writes a dropped and a kept probe through both distributors and
// reports whether the kept ones reached the backend without the dropped.
func (g *govCluster) probe(t *testing.T, tag, dropped, kept string) (droppedSeen, keptSeen int) {
	t.Helper()
	now := time.Now()
	for _, d := range g.dists {
		g.writeVia(t, d, now, []string{dropped, "probe", tag, "via", d.name}, []string{kept, "probe", tag, "via", d.name})
	}
	eventually(t, func(ct *assert.CollectT) bool {
		return len(backendSeries(ct, g.cluster, kept+`{probe="`+tag+`"}`)) == 2
	}, 30*time.Second, 100*time.Millisecond, "kept probe %s never reached the backend", tag)
	return len(backendSeries(t, g.cluster, dropped+`{probe="`+tag+`"}`)), 2
}

func TestGovernanceRolloutS3(t *testing.T) {
	t.Parallel()
	g := startGovCluster(t)
	// Version 1 is the seed (no rules), on every node.
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 1) }, 15*time.Second, 100*time.Millisecond, "nodes never ran the seed")
	dropped, _ := g.probe(t, "before", "gov_a_total", "gov_b_total")
	require.Equal(t, 2, dropped, "without rules both distributors forward gov_a_total")

	cand := filepath.Join(t.TempDir(), "cand.yml")
	require.NoError(t, os.WriteFile(cand, []byte(govRule("gov_a_.*")), 0o644))
	start := time.Now()
	code, out := g.ctl(t, "config", "apply", "--if-match=1", "--message=drop gov_a", cand)
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 2) }, 5*time.Second, 20*time.Millisecond, "version 2 did not reach every node within 5 s")
	t.Logf("version 2 on all 4 nodes after %s", time.Since(start))
	dropped, _ = g.probe(t, "applied", "gov_a_total", "gov_b_total")
	require.Zero(t, dropped, "both distributors drop gov_a_total once version 2 is active")
	require.Less(t, time.Since(start), 5*time.Second+2*time.Second, "enforced (seen at the backend) too late")

	// A stale write: 409, exit 3, nothing stored.
	code, out = g.ctl(t, "config", "apply", "--if-match=1", cand)
	require.Equal(t, 3, code, out)
	require.Contains(t, out, "409")

	// Roll back: the old behaviour returns on both distributors.
	code, out = g.ctl(t, "config", "rollback", "--message=gov_a is needed")
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 3) }, 5*time.Second, 20*time.Millisecond, "rollback did not reach every node")
	dropped, _ = g.probe(t, "rolledback", "gov_a_total", "gov_b_total")
	require.Equal(t, 2, dropped)
	code, out = g.ctl(t, "config", "history")
	require.Equal(t, 0, code, out)

	// Rollout time over 20 changes (PUTs on distributor 1, until all 4
	// nodes report the version).
	var times []time.Duration
	for i := range 20 {
		head := uint64(4 + i - 1)
		body := govRule(fmt.Sprintf("gov_x%d_.*", i))
		req, err := http.NewRequest(http.MethodPut, "http://"+g.dists[0].webAddr+"/promgov/api/v1/config", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("If-Match", strconv.FormatUint(head, 10))
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var env struct {
			Data struct {
				Version uint64 `json:"version"`
			} `json:"data"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, env.Data.Version) }, 5*time.Second, 10*time.Millisecond, "change %d", i)
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	t.Logf("MEASURE rollout to all 4 nodes over 20 changes: median %s, max %s", times[len(times)/2], times[len(times)-1])

	// A node restarted during a rollout comes up on the newest good version.
	ing := g.ingesters[1]
	ing.proc.Stop(t)
	req, err := http.NewRequest(http.MethodPut, "http://"+g.dists[0].webAddr+"/promgov/api/v1/config", strings.NewReader(govRule("gov_r_.*")))
	require.NoError(t, err)
	req.Header.Set("If-Match", "23")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	g.startGovIngester(ing)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 24) }, 10*time.Second, 50*time.Millisecond, "the restarted ingester is not on version 24")
	s := g.status(t, ing)
	require.EqualValues(t, 24, s.Active)
}

// TestGovernanceShadowCandidate: a version applied with --shadow runs its
// new rule in shadow beside the active version on both distributors: the
// rule counts the series it would drop (under its shadow name) and the
// backend still receives them. Promoted, it drops them.
func TestGovernanceShadowCandidate(t *testing.T) {
	t.Parallel()
	g := startGovCluster(t)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 1) }, 15*time.Second, 100*time.Millisecond, "nodes never ran the seed")

	cand := filepath.Join(t.TempDir(), "cand.yml")
	require.NoError(t, os.WriteFile(cand, []byte(govRule("gov_s_.*")), 0o644))
	code, out := g.ctl(t, "config", "apply", "--shadow", "--if-match=1", "--message=try dropping gov_s", cand)
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOnShadow(ct, 1, 2) }, 5*time.Second, 20*time.Millisecond,
		"shadow version 2 did not reach every node within 5 s")
	st := g.status(t, g.dists[1])
	require.EqualValues(t, 2, st.Shadow)
	require.NotNil(t, st.ShadowRun)
	require.Equal(t, []string{"drop-gov_s@v2"}, st.ShadowRun.Rules)

	dropped, _ := g.probe(t, "shadow", "gov_s_total", "gov_k_total")
	require.Equal(t, 2, dropped, "a shadow rule drops nothing")
	for _, d := range g.dists {
		n := metricSum(d.url("/metrics"), `promgov_rule_series_total{action="drop",mode="shadow",rule="drop-gov_s@v2"}`)
		require.GreaterOrEqual(t, n, 1.0, "%s counts what the shadow rule would drop", d.name)
	}

	code, out = g.ctl(t, "config", "promote", "--message=gov_s is unused", "2")
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 3) }, 5*time.Second, 20*time.Millisecond, "the promoted version did not reach every node")
	dropped, _ = g.probe(t, "promoted", "gov_s_total", "gov_k_total")
	require.Zero(t, dropped, "promoted, the rule drops gov_s_total on both distributors")
	for _, d := range g.dists {
		require.Zero(t, metricSum(d.url("/metrics"), `promgov_rule_series_total{action="drop",mode="shadow",rule="drop-gov_s@v2"}`),
			"%s forgot the shadow rule's series", d.name)
	}
}

// TestGovernanceAutoRollback: with governance.auto_rollback on, a version
// whose rules drop every sample the distributors receive is rolled back by
// a distributor within its window, as a new version everyone runs, and
// the series reach the backend again.
func TestGovernanceAutoRollback(t *testing.T) {
	t.Parallel()
	g := startGovCluster(t, "--governance.auto-rollback.max-drop-share=0.5", "--governance.auto-rollback.window=1m",
		"--governance.auto-rollback.min-samples=100")
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 1) }, 15*time.Second, 100*time.Millisecond, "nodes never ran the seed")

	cand := filepath.Join(t.TempDir(), "cand.yml")
	require.NoError(t, os.WriteFile(cand, []byte(govRule("gov_.*")), 0o644))
	code, out := g.ctl(t, "config", "apply", "--if-match=1", "--message=drop everything by mistake", cand)
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 2) }, 5*time.Second, 20*time.Millisecond, "version 2 did not reach every node")

	// 150 series a second through each distributor until the rollback.
	var series [][]string
	for i := range 150 {
		series = append(series, []string{"gov_ar_total", "i", strconv.Itoa(i)})
	}
	start := time.Now()
	eventually(t, func(ct *assert.CollectT) bool {
		for _, d := range g.dists {
			g.writeVia(t, d, time.Now(), series...)
		}
		s := g.status(ct, g.dists[0])
		return s.Active == 3
	}, 30*time.Second, time.Second, "version 2 was never rolled back")
	t.Logf("rolled back %s after the bad version was applied", time.Since(start).Round(100*time.Millisecond))
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 3) }, 5*time.Second, 20*time.Millisecond, "the rollback did not reach every node")

	code, out = g.ctl(t, "config", "history")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "promgov:auto-rollback")
	require.Contains(t, out, "automatic rollback of version 2 to version 1")
	total := 0.0
	for _, d := range g.dists {
		total += metricSum(d.url("/metrics"), "promgov_config_auto_rollbacks_total")
	}
	require.InDelta(t, 1, total, 0, "one distributor rolled back; the other saw the store change")

	dropped, _ := g.probe(t, "rolledback", "gov_ar_total", "gov_k_total")
	require.Equal(t, 2, dropped, "after the rollback both distributors forward again")
	// Nothing rolls the rollback back, and no version follows it.
	require.EqualValues(t, 3, g.status(t, g.dists[1]).Active)
}

// TestGovernanceVersionedAggregations: aggregation rules are part of a
// governance version. Applied through promgovctl, the version's rule runs
// on the owning ingester (its outputs reach Prometheus, its inputs do not)
// without an ingester restart or file edit.
func TestGovernanceVersionedAggregations(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	g := startGovClusterWith(t, 1, nil, "--governance.store.backend=filesystem", "--governance.store.filesystem.directory="+store)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 1) }, 15*time.Second, 100*time.Millisecond, "nodes never ran the seed")

	cand := filepath.Join(t.TempDir(), "cand.yml")
	require.NoError(t, os.WriteFile(cand, []byte("aggregations:\n  - {name: gov-requests, match: gov_agg_total, without: [pod], interval: 5s, max_delay: 2s}\n"), 0o644))
	code, out := g.ctl(t, "config", "apply", "--if-match=1", "--message=aggregate pod away", cand)
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 2) }, 5*time.Second, 20*time.Millisecond, "version 2 did not reach every node")

	// Pods 1, 2 and 3 (pod 0 appears only at step 25): svc a is pod 2
	// (3 a step), svc b pods 1 and 3 (2 + 4 a step).
	gen := &aggGen{counter: "gov_agg_total", pods: 4, countersOnly: true}
	clock := newStepClock()
	var last time.Time
	for gen.step = 0; gen.step < 20; gen.step++ {
		last = clock.tick()
		aggSend(t, g.writeURL(), gen.body(t, last), aggTenant)
	}
	waitLastInterval(t, g.backend, `{__name__="gov_agg_total:sum_without_pod"}`, last)
	for svc, want := range map[string]float64{"a": 19 * 3, "b": 19 * (2 + 4)} {
		vs := outputValues(t, g.backend, `{__name__="gov_agg_total:sum_without_pod", svc="`+svc+`"}`)
		require.Equal(t, want, vs[len(vs)-1], "svc=%s: the output's total is the inputs' increase: %v", svc, vs)
	}
	require.Empty(t, backendSeries(t, g.cluster, `gov_agg_total`), "the inputs were aggregated away, none written")
}
