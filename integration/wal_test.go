package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file prove the ingester's write-ahead log: whatever the
// distributor acknowledged reaches the backend even when an ingester is
// killed with SIGKILL, when the backend is down for a minute, and when the
// WAL fills up while the backend is down. Senders are loadgen runs bounded by
// a request count (not a duration) and retrying without limit, so every
// request ends acknowledged and loadgen's accepted_samples is exactly what
// must be in the backend.

// walCluster is a distributor and ingesters started with extra ingester
// flags, in front of a backend that can be restarted.
type walCluster struct {
	*cluster
	backendDir    string
	backendURL    string // the ingesters' --backend.url
	ingesterExtra []string
}

// newWALCluster starts a restartable backend, a distributor and n
// ingesters (each with ingesterExtra flags) and waits until all are ACTIVE.
func newWALCluster(t *testing.T, n int, ingesterExtra ...string) *walCluster {
	t.Helper()
	return newWALClusterOn(t, n, func() string { return filepath.Join(t.TempDir(), "wal") }, ingesterExtra...)
}

// newWALClusterOn is newWALCluster with each ingester's WAL directory from
// walDir (a small filesystem, for the full-disk tests).
func newWALClusterOn(t *testing.T, n int, walDir func() string, ingesterExtra ...string) *walCluster {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	be := startBackendAt(t, dir, freeAddr(t))
	wc := startWALClusterOn(t, be, be.writeURL(), n, walDir, ingesterExtra...)
	wc.backendDir = dir
	return wc
}

// startWALCluster starts a distributor and n ingesters forwarding to
// backendURL (be is the Prometheus behind it, nil for another backend;
// backendURL "" when ingesterExtra has a --config.file listing backends)
// and waits until all are ACTIVE.
func startWALCluster(t *testing.T, be *backend, backendURL string, n int, ingesterExtra ...string) *walCluster {
	t.Helper()
	return startWALClusterOn(t, be, backendURL, n, func() string { return filepath.Join(t.TempDir(), "wal") }, ingesterExtra...)
}

// startWALClusterOn is startWALCluster with each ingester's WAL directory
// from walDir.
func startWALClusterOn(t *testing.T, be *backend, backendURL string, n int, walDir func() string, ingesterExtra ...string) *walCluster {
	t.Helper()
	wc := &walCluster{
		cluster:       &cluster{t: t, backend: be, backendProtocol: 2},
		backendURL:    backendURL,
		ingesterExtra: ingesterExtra,
	}
	wc.distributor = wc.startDistributor()
	for range n {
		wc.seq++
		node := &node{
			name:       fmt.Sprintf("ingester-%d", wc.seq),
			webAddr:    freeAddr(t),
			gossipAddr: freeAddr(t),
			grpcAddr:   freeAddr(t),
			walDir:     walDir(),
		}
		wc.startWALIngester(node)
		wc.ingesters = append(wc.ingesters, node)
	}
	wc.waitActive(n)
	return wc
}

// startWALIngester starts (or restarts, on the same name, ports and WAL
// directory) the ingester n and waits until it is ready.
func (wc *walCluster) startWALIngester(n *node) {
	args := []string{
		"--web.listen-address=" + n.webAddr,
		"--grpc.listen-address=" + n.grpcAddr,
		"--memberlist.bind-address=" + n.gossipAddr,
		"--memberlist.join=" + wc.distributor.gossipAddr,
		"--memberlist.node-name=" + n.name,
		"--wal.dir=" + n.walDir,
		"--forward.batch-send-deadline=200ms",
		"--forward.max-backoff=1s",
		"--ingester.leave-drain-period=2s",
		"--log.level=debug",
	}
	if wc.backendURL != "" { // otherwise the backends are in ingesterExtra's --config.file
		args = append(args, "--backend.url="+wc.backendURL, "--backend.protocol="+strconv.Itoa(wc.backendProtocol))
	}
	n.proc = startProcess(wc.t, n.name, filepath.Join(binDir, "ingester"), append(args, wc.ingesterExtra...)...)
	waitReady(wc.t, n.proc, n.url("/-/ready"))
}

// stopBackend stops the backend gracefully (SIGTERM).
func (wc *walCluster) stopBackend() {
	wc.t.Helper()
	wc.backend.proc.Stop(wc.t)
}

// restartBackend starts the backend again on the same data and address.
func (wc *walCluster) restartBackend() {
	wc.t.Helper()
	wc.backend = startBackendAt(wc.t, wc.backendDir, wc.backend.addr)
}

// waitAllFound waits until the backend holds every sample loadgen had
// acknowledged, and returns how many it holds.
func (wc *walCluster) waitAllFound(rep loadgenReport) int {
	wc.t.Helper()
	return waitAllStored(wc.t, rep, wc.loadgenTotal)
}

// waitAllStored waits until stored (a count of the loadgen samples in a
// backend) reaches every sample loadgen had acknowledged, and returns it.
func waitAllStored(t *testing.T, rep loadgenReport, stored func(T) int) int {
	t.Helper()
	var found int
	eventually(t, func(ct *assert.CollectT) bool {
		found = stored(ct)
		return int64(found) == rep.AcceptedSamples
	}, 60*time.Second, 250*time.Millisecond, "backend never held all %d acknowledged samples (has %v)",
		rep.AcceptedSamples, lazy(func() any { return found }))
	return found
}

// loadgenTotal counts every stored loadgen sample from the raw samples.
func (wc *walCluster) loadgenTotal(t T) int {
	t.Helper()
	return samplesIn(wc.backend.rawSamples(t, `{__name__=~"loadgen_.+"}`))
}

// startLoadgen runs loadgen against the distributor: requests requests of
// 100 one-sample series at rate samples/s, retrying every failure until it
// succeeds.
func (wc *walCluster) startLoadgen(out *bytes.Buffer, rate, requests int) *process {
	return startProcessStdout(wc.t, "loadgen", out, filepath.Join(binDir, "loadgen"),
		"-url="+wc.writeURL(), "-protocol=2",
		"-metrics=40", "-series-per-metric=10", "-series-per-request=100",
		"-rate="+strconv.Itoa(rate), "-duration=0", "-requests="+strconv.Itoa(requests), "-concurrency=4",
		"-retry=true", "-max-retries=0", "-max-backoff=1s", "-output=json", "-report-interval=0",
	)
}

// loadgenReport waits for loadgen and decodes its report.
func waitLoadgen(t *testing.T, lg *process, out *bytes.Buffer, timeout time.Duration) loadgenReport {
	t.Helper()
	require.NoError(t, lg.Wait(timeout), "loadgen")
	var rep loadgenReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "loadgen report: %s", out.String())
	require.Zero(t, rep.RequestsFailed, "requests given up on")
	require.Positive(t, rep.AcceptedSamples)
	require.Equal(t, rep.SentSamples, rep.AcceptedSamples)
	return rep
}

func TestWALKill9IngesterUnderLoad(t *testing.T) {
	// A long batch deadline leaves acknowledged samples unsent at the
	// kill, and a long checkpoint interval leaves sent ones uncommitted
	// (re-sent after the restart: the backend must take the duplicates).
	wc := newWALCluster(t, 2, "--forward.batch-send-deadline=2s", "--forward.max-samples-per-send=100000",
		"--forward.checkpoint-interval=5s")
	var out bytes.Buffer
	const rate, requests = 3000, 900 // 30 s of load
	lg := wc.startLoadgen(&out, rate, requests)

	eventually(t, func(ct *assert.CollectT) bool { return wc.loadgenTotal(ct) >= 6000 }, 30*time.Second, 200*time.Millisecond,
		"load never reached the backend")
	// Kill the ingester that owns the most load.
	received := func(n *node) float64 {
		return metricSum(n.url("/metrics"), `promgov_ingester_received_total{kind="samples"}`)
	}
	victim := wc.ingesters[0]
	if received(wc.ingesters[1]) > received(victim) {
		victim = wc.ingesters[1]
	}
	acked := received(victim)
	sent := metricSum(victim.url("/metrics"), "promgov_forward_sent_samples_total")
	victim.proc.Kill() // SIGKILL: no flush, no checkpoint, no leave
	t.Logf("killed %s with SIGKILL: %.0f samples acknowledged, %.0f of them sent (just before the kill)", victim.name, acked, sent)

	wc.startWALIngester(victim)
	wc.waitActive(2)
	t.Logf("%s restarted on the same WAL", victim.name)

	rep := waitLoadgen(t, lg, &out, 120*time.Second)
	found := wc.waitAllFound(rep)
	t.Logf("kill -9: sent %d samples, acknowledged %d, found in the backend %d (retries %d, statuses %v)",
		rep.SentSamples, rep.AcceptedSamples, found, rep.Retries, rep.StatusCounts)
}

// TestWALBackendOutage stops the backend for 60 s under load and starts it
// again on the same data: everything acknowledged arrives, and the backlog
// drains faster than the ingest rate.
func TestWALBackendOutage(t *testing.T) {
	t.Parallel()
	wc := newWALCluster(t, 1)
	ing := wc.ingesters[0]
	var out bytes.Buffer
	const rate, requests = 3000, 2700 // 90 s of load
	lg := wc.startLoadgen(&out, rate, requests)
	shards := watchMetrics(t, ing.url("/metrics"), "promgov_forward_shards", "promgov_forward_shards_desired",
		"promgov_forward_backoff_seconds", "promgov_forward_pending_samples")
	defer func() {
		t.Logf("forwarder over time (shards, desired shards, backoff seconds, pending samples):%s", shards())
	}()

	eventually(t, func(ct *assert.CollectT) bool { return wc.loadgenTotal(ct) >= 6000 }, 30*time.Second, 200*time.Millisecond,
		"load never reached the backend")
	wc.stopBackend()
	t.Logf("backend stopped at %s", time.Now().Format("15:04:05.0"))
	outage := time.NewTimer(60 * time.Second) // the scenario: a one-minute outage under load
	<-outage.C
	// The backlog is what the ingester accepted but has not sent.
	pending := func() (received, sent float64) {
		return metricSum(ing.url("/metrics"), "promgov_ingester_received_total"),
			metricSum(ing.url("/metrics"), "promgov_forward_sent_samples_total")
	}
	recv0, sent0 := pending()
	// The drain is timed from the restart command, so it includes the
	// backend's own startup (a conservative rate).
	start := time.Now()
	wc.restartBackend()
	t.Logf("backend restarted at %s (ready after %.1fs); backlog %.0f samples", time.Now().Format("15:04:05.0"), time.Since(start).Seconds(), recv0-sent0)

	// Drained: the forwarder has sent everything received before the
	// restart and is within one second of ingest of the live load.
	var recv1, sent1 float64
	require.Eventually(t, func() bool {
		recv1, sent1 = pending()
		return sent1 >= recv0 && recv1-sent1 < rate
	}, 90*time.Second, 100*time.Millisecond, "backlog never drained")
	elapsed := time.Since(start).Seconds()
	drainRate := (sent1 - sent0) / elapsed
	t.Logf("backlog of %.0f samples drained in %.1fs: %.0f samples/s sent vs %d samples/s ingested (%.1fx)",
		recv0-sent0, elapsed, drainRate, rate, drainRate/rate)
	require.Greater(t, recv0-sent0, float64(rate), "the outage built no backlog")

	rep := waitLoadgen(t, lg, &out, 120*time.Second)
	found := wc.waitAllFound(rep)
	t.Logf("outage: sent %d samples, acknowledged %d, found %d", rep.SentSamples, rep.AcceptedSamples, found)
}

// TestWALFullBackpressure fills a small WAL while the backend is down:
// senders get 429, nothing acknowledged is lost, and ingestion resumes
// once the backend is back.
func TestWALFullBackpressure(t *testing.T) {
	wc := newWALCluster(t, 1, "--wal.segment-size-bytes=65536", "--wal.max-size-bytes=262144")
	ing := wc.ingesters[0]
	var out bytes.Buffer
	const rate, requests = 2000, 600
	lg := wc.startLoadgen(&out, rate, requests)

	eventually(t, func(ct *assert.CollectT) bool { return wc.loadgenTotal(ct) >= 2000 }, 30*time.Second, 200*time.Millisecond,
		"load never reached the backend")
	wc.stopBackend()
	t.Log("backend stopped")
	// The WAL fills and the ingester refuses pushes with RESOURCE_EXHAUSTED
	// (the distributor answers 429; checked in loadgen's report below).
	require.Eventually(t, func() bool {
		return metricSum(ing.url("/metrics"), `promgov_ingester_push_requests_total{code="ResourceExhausted"`) > 0
	}, 60*time.Second, 200*time.Millisecond, "the WAL never filled up")
	walBytes := metricSum(ing.url("/metrics"), "promgov_wal_size_bytes")
	t.Logf("WAL full at %.0f bytes; pushes refused", walBytes)
	require.True(t, lg.Running(), "loadgen finished before the WAL filled")

	wc.restartBackend()
	t.Log("backend restarted")
	rep := waitLoadgen(t, lg, &out, 120*time.Second)
	require.Positive(t, rep.StatusCounts["429"], "senders never saw 429: %v", rep.StatusCounts)
	found := wc.waitAllFound(rep)
	t.Logf("WAL full: sent %d samples, acknowledged %d, found %d, statuses %v", rep.SentSamples, rep.AcceptedSamples, found, rep.StatusCounts)
}

// watchMetrics scrapes url every 500 ms and remembers each change of the
// named metrics' values; the returned function stops watching and renders
// the changes, one line each.
func watchMetrics(t *testing.T, url string, names ...string) func() string {
	stop, done := make(chan struct{}), make(chan struct{})
	var lines []string
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		last := ""
		for {
			vals := make([]string, len(names))
			for i, n := range names {
				vals[i] = strconv.FormatFloat(metricSum(url, n), 'g', 2, 64)
			}
			if line := strings.Join(vals, " "); line != last {
				lines = append(lines, time.Now().Format("15:04:05.0")+" "+line)
				last = line
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	render := func() string {
		once.Do(func() { close(stop); <-done })
		return "\n  " + strings.Join(lines, "\n  ")
	}
	t.Cleanup(func() { render() })
	return render
}
