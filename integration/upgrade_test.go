package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRollingUpgradeUnderLoad does what `helm upgrade` does to a running
// cluster, with real processes, under continuous load: it replaces every
// ingester in turn the way a StatefulSet rolling update does (SIGTERM, wait
// for the exit, start the new binary with the same name and WAL directory,
// wait until it is ready), then every distributor the way a Deployment
// does. The sender round-robins over the two distributors like a load
// balancer and retries 429/5xx like Prometheus. Every sample sent is
// acknowledged and found in the backend exactly; the answers by status
// show what the upgrade cost the sender. docs/deploy.md describes the
// procedure and the settings it depends on.
func TestRollingUpgradeUnderLoad(t *testing.T) {
	requireIntegration(t)
	const newVersion = "v0.0.0-upgrade-new"
	newBin := buildVersion(t, newVersion)
	up := newUpgradeCluster(t, 2, 3)

	// 2,000 samples/s for about 90 s: long enough to cover the whole
	// upgrade (checked below) while keeping the CPU modest.
	var out bytes.Buffer
	lg := startProcessStdout(t, "loadgen", &out, filepath.Join(binDir, "loadgen"),
		"-url="+up.writeURLs(), "-protocol=2",
		"-metrics=40", "-series-per-metric=10", "-series-per-request=100",
		"-rate=2000", "-duration=0", "-requests=1800", "-concurrency=4",
		"-retry=true", "-max-retries=0", "-max-backoff=1s", "-output=json", "-report-interval=0",
	)
	total := func(t T) int { return samplesIn(up.backend.rawSamples(t, `{__name__=~"loadgen_.+"}`)) }
	eventually(t, func(ct *assert.CollectT) bool { return total(ct) >= 4000 }, 30*time.Second, 200*time.Millisecond, "load never reached the backend")

	// Ingesters in reverse ordinal order, as a StatefulSet updates them.
	// The new pod has the old one's name and volume but a new IP: here,
	// new ports.
	for i := len(up.ingesters) - 1; i >= 0; i-- {
		n := up.ingesters[i]
		start, answered5xx := time.Now(), up.answered5xx()
		n.proc.Stop(t) // SIGTERM: LEAVING, drain, flush, leave; exit 0
		stopped := time.Since(start)
		n.webAddr, n.grpcAddr, n.gossipAddr = freeAddr(t), freeAddr(t), freeAddr(t)
		up.startIngester(n, newBin)
		up.waitActive(len(up.ingesters))
		t.Logf("%s replaced: stopped in %.1fs, ACTIVE again %.1fs after the SIGTERM; the distributors answered %.0f 5xx meanwhile",
			n.name, stopped.Seconds(), time.Since(start).Seconds(), up.answered5xx()-answered5xx)
		require.True(t, lg.Running(), "the load ended before the upgrade did: raise loadgen's -requests")
	}
	for _, n := range up.distributors {
		start := time.Now()
		n.proc.Stop(t)
		up.startDistributor(n, newBin)
		waitReady(t, n.proc, n.url("/-/ready"))
		t.Logf("%s replaced in %.1fs", n.name, time.Since(start).Seconds())
		require.True(t, lg.Running(), "the load ended before the upgrade did: raise loadgen's -requests")
	}
	for _, n := range append(append([]*node{}, up.ingesters...), up.distributors...) {
		require.Equal(t, newVersion, runningVersion(t, n), "%s runs the new version", n.name)
	}

	rep := waitLoadgen(t, lg, &out, 180*time.Second)
	found := waitAllStored(t, rep, total)
	errors5xx, throttled := int64(0), rep.StatusCounts["429"]
	for code, n := range rep.StatusCounts {
		if strings.HasPrefix(code, "5") {
			errors5xx += n
		}
	}
	t.Logf("rolling upgrade of %d ingesters and %d distributors: sent %d samples, acknowledged %d, in the backend %d; "+
		"answers by status %v (5xx %d, 429 %d), %d retries, %d requests given up",
		len(up.ingesters), len(up.distributors), rep.SentSamples, rep.AcceptedSamples, found,
		rep.StatusCounts, errors5xx, throttled, rep.Retries, rep.RequestsFailed)
}

// upgradeCluster is a backend, distributors and ingesters that all join
// each other (as they do through the chart's headless gossip Service), so
// any of them can be replaced.
type upgradeCluster struct {
	t            *testing.T
	backend      *backend
	distributors []*node
	ingesters    []*node
}

func newUpgradeCluster(t *testing.T, distributors, ingesters int) *upgradeCluster {
	t.Helper()
	up := &upgradeCluster{t: t, backend: startBackend(t)}
	for i := range distributors {
		up.distributors = append(up.distributors, &node{
			name: fmt.Sprintf("distributor-%d", i), webAddr: freeAddr(t), gossipAddr: freeAddr(t),
		})
	}
	for i := range ingesters {
		up.ingesters = append(up.ingesters, &node{
			name: fmt.Sprintf("ingester-%d", i), webAddr: freeAddr(t), gossipAddr: freeAddr(t),
			grpcAddr: freeAddr(t), walDir: filepath.Join(t.TempDir(), "wal"),
		})
	}
	for _, n := range up.distributors {
		up.startDistributor(n, binDir)
	}
	for _, n := range up.ingesters {
		up.startIngester(n, binDir)
	}
	up.waitActive(ingesters)
	for _, n := range up.distributors {
		waitReady(t, n.proc, n.url("/-/ready"))
	}
	return up
}

// join lists every member's gossip address but n's own.
func (up *upgradeCluster) join(n *node) string {
	var addrs []string
	for _, m := range append(append([]*node{}, up.distributors...), up.ingesters...) {
		if m != n {
			addrs = append(addrs, m.gossipAddr)
		}
	}
	return strings.Join(addrs, ",")
}

// startDistributor starts n from the binaries in dir, without waiting:
// the first distributor has no ACTIVE ingester to be ready with.
func (up *upgradeCluster) startDistributor(n *node, dir string) {
	n.proc = startProcess(up.t, n.name, filepath.Join(dir, "distributor"),
		"--web.listen-address="+n.webAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.join="+up.join(n),
		"--memberlist.node-name="+n.name,
		"--memberlist.join-retry-max-interval=1s",
		"--distributor.push-timeout=5s",
	)
}

// startIngester starts n from the binaries in dir on n's WAL directory and
// waits until it is ready.
func (up *upgradeCluster) startIngester(n *node, dir string) {
	n.proc = startProcess(up.t, n.name, filepath.Join(dir, "ingester"),
		"--web.listen-address="+n.webAddr,
		"--grpc.listen-address="+n.grpcAddr,
		"--memberlist.bind-address="+n.gossipAddr,
		"--memberlist.join="+up.join(n),
		"--memberlist.node-name="+n.name,
		"--memberlist.join-retry-max-interval=1s",
		"--wal.dir="+n.walDir,
		"--backend.url="+up.backend.writeURL(),
		"--forward.batch-send-deadline=200ms",
		"--forward.max-backoff=1s",
		"--ingester.leave-drain-period=2s",
	)
	waitReady(up.t, n.proc, n.url("/-/ready"))
}

// waitActive waits until every distributor sees n ACTIVE ingesters. A
// distributor is not ready until it did: if the wait gives up, its stacks
// are dumped (process.report).
func (up *upgradeCluster) waitActive(n int) {
	up.t.Helper()
	for _, d := range up.distributors {
		c := &cluster{t: up.t, distributor: d}
		d.proc.ready.Store(false)
		eventually(up.t, func(ct *assert.CollectT) bool {
			return len(c.activeIngesters(ct)) == n
		}, 30*time.Second, 100*time.Millisecond, "%s never saw %d ACTIVE ingesters", d.name, n)
		d.proc.ready.Store(true)
	}
}

// answered5xx sums the 5xx answers of the running distributors.
func (up *upgradeCluster) answered5xx() float64 {
	sum := 0.0
	for _, d := range up.distributors {
		sum += metricSum(d.url("/metrics"), `promgov_distributor_requests_total{code="5`)
	}
	return sum
}

func (up *upgradeCluster) writeURLs() string {
	urls := make([]string, len(up.distributors))
	for i, d := range up.distributors {
		urls[i] = d.url("/api/v1/write")
	}
	return strings.Join(urls, ",")
}

// buildVersion builds the distributor and ingester as `make build` does,
// with version v, into a new directory: the "new release" of the upgrade.
func buildVersion(t *testing.T, v string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/prometheus/common/version.Version="+v,
		"-o", dir+"/", "./cmd/distributor", "./cmd/ingester")
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "build version %s", v)
	return dir
}

var buildInfoVersion = regexp.MustCompile(`^promgov_build_info\{.*\bversion="([^"]*)"`)

// runningVersion reads the version label of promgov_build_info from n.
func runningVersion(t *testing.T, n *node) string {
	t.Helper()
	resp, err := http.Get(n.url("/metrics"))
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := buildInfoVersion.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	require.NoError(t, sc.Err())
	t.Fatalf("%s exposes no promgov_build_info", n.name)
	return ""
}
