package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promgov/promgov/internal/testfs"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file send what an attacker, or a bad day, sends: one
// request each that used to crash an ingester, exhaust memory or wedge the
// WAL (issue 21). Each asserts the answer, that every process still serves,
// and a memory bound, documented in docs/limits.md:
//
//	hostile client ──RW 1.0/2.0──► distributor (rules on) ──gRPC──► ingester-1, ingester-2 ──RW 2.0──► Prometheus 3.16

// hostileRules builds label sets on the distributor for every series, which
// is where an over-long label value used to panic the request handler.
const hostileRules = `
rules:
  - name: tag-and-rename
    relabel_configs:
      - target_label: governed
        replacement: "yes"
      - source_labels: [__name__]
        regex: "legacy_(.*)"
        target_label: __name__
        replacement: "app_$1"
`

// Memory bounds (peak RSS, VmHWM) asserted below; docs/limits.md records
// the measured values.
const (
	distributorPeakRSSBound = 400 << 20
	ingesterPeakRSSBound    = 150 << 20
	slowClientsRSSBound     = 200 << 20
	// zeroBurstRSSBound: twice the distributor's default in-flight bytes
	// limit (256 MiB): the buffers in flight, plus pooled buffers between
	// two requests and the garbage collector's headroom.
	zeroBurstRSSBound = 512 << 20
)

func newHostileCluster(t *testing.T) *cluster {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(hostileRules), 0o644))
	c := startRulesClusterN(t, cfg, 2)
	c.backendProtocol = 2
	return c
}

// procStatus reads a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, p *process, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
	return 0
}

// requireAllServing checks that every process of c is alive and ready.
func requireAllServing(t *testing.T, c *cluster) {
	t.Helper()
	for _, n := range append([]*node{c.distributor}, c.ingesters...) {
		require.True(t, n.proc.Running(), "%s died", n.name)
		resp, err := http.Get(n.url("/-/ready"))
		require.NoError(t, err, "%s", n.name)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s is not ready", n.name)
	}
}

// hostileBody is a request of one valid series (okName) and one series
// whose labels are extra, in protocol proto.
func hostileBody(t T, proto int, okName string, extra ...string) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	if proto == 1 {
		bad := prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}
		for i := 0; i+1 < len(extra); i += 2 {
			bad.Labels = append(bad.Labels, prompb.Label{Name: extra[i], Value: extra[i+1]})
		}
		b, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: []prompb.Label{{Name: "__name__", Value: okName}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}, bad}}).Marshal()
		require.NoError(t, err)
		return snappy.Encode(nil, b)
	}
	st := writev2.NewSymbolTable()
	ok := writev2.TimeSeries{LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize(okName)},
		Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}
	bad := writev2.TimeSeries{Samples: []writev2.Sample{{Value: 1, Timestamp: now}}}
	for _, s := range extra {
		bad.LabelsRefs = append(bad.LabelsRefs, st.Symbolize(s))
	}
	b, err := (&writev2.Request{Symbols: st.Symbols(), Timeseries: []writev2.TimeSeries{ok, bad}}).Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

func contentTypeFor(proto int) string {
	if proto == 1 {
		return contentTypeV1
	}
	return contentTypeV2
}

// TestHostileLabelValueOver16MiB: a label value of 16 MiB + 1 byte (past
// what a Prometheus label set can encode) used to panic the ingester and,
// with rules, the distributor; the sender's retries then crashed it again.
func TestHostileLabelValueOver16MiB(t *testing.T) {
	c := newHostileCluster(t)
	huge := strings.Repeat("v", 16<<20+1)
	for _, proto := range []int{1, 2} {
		ok := fmt.Sprintf("hostile_huge_value_ok_v%d", proto)
		body := hostileBody(t, proto, ok, "__name__", "hostile_huge_value", "a", huge)
		t.Logf("RW %d.0: %d bytes compressed", proto, len(body))
		for range 3 { // a sender retries
			code, _, msg := postRW(t, c.writeURL(), contentTypeFor(proto), body, nil)
			require.Equal(t, http.StatusBadRequest, code, msg)
			require.Contains(t, msg, `__name__="hostile_huge_value"`)
			require.Contains(t, msg, "16777217 bytes long, over the limit of 4096")
			require.Contains(t, msg, "-distributor.max-label-value-length")
			require.Contains(t, msg, "the other 1 series in the request were written")
		}
		eventually(t, func(ct *assert.CollectT) bool { return c.backend.count(ct, "count("+ok+")") == 1 },
			20*time.Second, 200*time.Millisecond, "the valid series of the request never arrived")
	}
	requireAllServing(t, c)
	for _, n := range c.ingesters {
		require.Zero(t, metricSum(n.url("/metrics"), "promgov_request_panics_total"), n.name)
	}
	require.Zero(t, metricSum(c.distributor.url("/metrics"), "promgov_request_panics_total"))
}

// TestHostileMillionLabels: one series with 1,000,000 labels (14 MB
// decoded) used to be stored after 6-9 s and grow an ingester by 1.25 GB
// per two requests, and to exhaust the label-pair tracking budget.
func TestHostileMillionLabels(t *testing.T) {
	c := newHostileCluster(t)
	labels := []string{"__name__", "hostile_wide"}
	for i := 1; i < 1_000_000; i++ {
		labels = append(labels, fmt.Sprintf("l%07d", i), "v")
	}
	for _, proto := range []int{1, 2} {
		ok := fmt.Sprintf("hostile_wide_ok_v%d", proto)
		body := hostileBody(t, proto, ok, labels...)
		for range 2 {
			start := time.Now()
			code, _, msg := postRW(t, c.writeURL(), contentTypeFor(proto), body, nil)
			require.Equal(t, http.StatusBadRequest, code, msg)
			require.Contains(t, msg, "series has 1000000 labels, over the limit of 64 per series")
			require.Contains(t, msg, "-distributor.max-label-names-per-series")
			t.Logf("RW %d.0, %d bytes compressed: 400 in %s", proto, len(body), time.Since(start).Round(time.Millisecond))
		}
		eventually(t, func(ct *assert.CollectT) bool { return c.backend.count(ct, "count("+ok+")") == 1 },
			20*time.Second, 200*time.Millisecond, "the valid series of the request never arrived")
	}
	requireAllServing(t, c)
	dist := procStatus(t, c.distributor.proc, "VmHWM")
	t.Logf("peak RSS: distributor %d MiB", dist>>20)
	require.Less(t, dist, int64(distributorPeakRSSBound))
	for _, n := range c.ingesters {
		peak := procStatus(t, n.proc, "VmHWM")
		t.Logf("peak RSS: %s %d MiB", n.name, peak>>20)
		require.Less(t, peak, int64(ingesterPeakRSSBound), n.name)
		require.Zero(t, metricSum(n.url("/metrics"), "promgov_cardinality_untracked_total"),
			"%s: the label-pair budget was exhausted", n.name)
	}
}

// TestHostileSlowClaimedLength: 300 connections that each declare a 10 MiB
// body and send one byte made the distributor reserve 3.15 GB.
func TestHostileSlowClaimedLength(t *testing.T) {
	c := newHostileCluster(t)
	const clients = 300
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
	}()
	for range clients {
		conn, err := net.Dial("tcp", c.distributor.webAddr)
		require.NoError(t, err)
		conns = append(conns, conn)
		_, err = fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Encoding: snappy\r\nContent-Length: %d\r\n\r\nx",
			c.distributor.webAddr, contentTypeV1, 10<<20)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return metricSum(c.distributor.url("/metrics"), "promgov_distributor_inflight_requests") >= clients
	}, 30*time.Second, 100*time.Millisecond, "the distributor never read all %d requests", clients)

	// A normal sender is served meanwhile.
	code, _, msg := postRW(t, c.writeURL(), contentTypeV1, hostileBody(t, 1, "hostile_slow_ok", "__name__", "hostile_slow_other"), nil)
	require.Equal(t, http.StatusNoContent, code, msg)

	rss, peak := procStatus(t, c.distributor.proc, "VmRSS"), procStatus(t, c.distributor.proc, "VmHWM")
	t.Logf("%d clients each holding a request that claims 10 MiB: distributor RSS %d MiB, peak %d MiB", clients, rss>>20, peak>>20)
	require.Less(t, peak, int64(slowClientsRSSBound))
	requireAllServing(t, c)
}

// TestHostileZeroBurst: 100 concurrent requests of 2.8 MB, each the snappy
// block of 60 MB of zeros (under the 64 MiB decoded limit, answered 400),
// drove the distributor from 20 MB to 6.9 GB RSS, which it kept. The
// in-flight bytes limit answers what does not fit 503 with Retry-After
// before decompressing it, and the distributor serves normal writes after.
func TestHostileZeroBurst(t *testing.T) {
	c := newHostileCluster(t)
	zeros := snappy.Encode(nil, make([]byte, 60<<20))
	t.Logf("each request: %d bytes compressed, %d MiB decoded", len(zeros), 60)
	const senders = 100
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
	)
	start := make(chan struct{})
	for range senders {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, c.writeURL(), bytes.NewReader(zeros))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", contentTypeV1)
			req.Header.Set("Content-Encoding", "snappy")
			resp, err := http.DefaultClient.Do(req)
			outcome := ""
			switch {
			case err != nil:
				// A refusal before the body was read closes the connection,
				// which the client may see while it is still sending.
				outcome = "connection closed while sending"
			default:
				msg, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				outcome = resp.Status
				switch resp.StatusCode {
				case http.StatusBadRequest:
				case http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(msg), "-distributor.max-inflight-push-") {
						t.Errorf("503 without Retry-After or the limit's flag: %v %q", resp.Header, msg)
					}
				default:
					t.Errorf("unexpected answer %s: %s", resp.Status, msg)
				}
			}
			mu.Lock()
			codes[outcome]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	peak, rss := procStatus(t, c.distributor.proc, "VmHWM"), procStatus(t, c.distributor.proc, "VmRSS")
	t.Logf("%d concurrent requests of 60 MiB of zeros: %v; distributor peak RSS %d MiB, RSS after %d MiB", senders, codes, peak>>20, rss>>20)
	require.Less(t, peak, int64(zeroBurstRSSBound))
	require.Positive(t, codes["503 Service Unavailable"], "nothing was refused by the in-flight limits")

	code, _, msg := postRW(t, c.writeURL(), contentTypeV1, hostileBody(t, 1, "hostile_burst_ok", "__name__", "hostile_burst_other"), nil)
	require.Equal(t, http.StatusNoContent, code, msg)
	eventually(t, func(ct *assert.CollectT) bool { return c.backend.count(ct, "count(hostile_burst_ok)") == 1 },
		20*time.Second, 200*time.Millisecond, "the write after the burst never arrived")
	require.Zero(t, metricSum(c.distributor.url("/metrics"), "promgov_distributor_inflight_bytes"), "the burst left bytes reserved")
	requireAllServing(t, c)
}

// TestHostileTenantIDs: a tenant header with invalid UTF-8 got 500 (which
// senders retry forever), and 3,000 tenant IDs grew an ingester's /metrics
// from 134 to 18,160 lines.
func TestHostileTenantIDs(t *testing.T) {
	c := newHostileCluster(t)
	body := hostileBody(t, 1, "hostile_tenant_ok", "__name__", "hostile_tenant_other")
	for name, tc := range map[string]struct{ tenant, want string }{
		"invalid UTF-8": {"team\xff", "byte 4 (0xff) is not allowed"},
		"too long":      {strings.Repeat("t", 151), "longer than 150 bytes"},
		"slash":         {"a/b", "byte 1 (0x2f) is not allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, msg := postRW(t, c.writeURL(), contentTypeV1, body, map[string]string{"X-Scope-OrgID": tc.tenant})
			require.Equal(t, http.StatusBadRequest, code, msg)
			require.Contains(t, msg, "invalid tenant ID")
			require.Contains(t, msg, "in header X-Scope-OrgID")
			require.Contains(t, msg, tc.want)
		})
	}

	lines := func(n *node) int {
		resp, err := http.Get(n.url("/metrics"))
		require.NoError(t, err)
		defer resp.Body.Close()
		count := 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if !strings.HasPrefix(sc.Text(), "#") {
				count++
			}
		}
		return count
	}
	before := map[string]int{}
	for _, n := range c.ingesters {
		before[n.name] = lines(n)
	}
	const tenants = 3000
	var wg sync.WaitGroup
	errs := make(chan string, tenants)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, c.writeURL(), bytes.NewReader(body))
				req.Header.Set("Content-Type", contentTypeV1)
				req.Header.Set("Content-Encoding", "snappy")
				req.Header.Set("X-Scope-OrgID", fmt.Sprintf("tenant-%04d", i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- resp.Status
				}
			}
		}()
	}
	for i := range tenants {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a tenant's write failed: %s", e)
	}
	for _, n := range c.ingesters {
		after := lines(n)
		t.Logf("%s /metrics: %d series before %d tenants, %d after", n.name, before[n.name], tenants, after)
		// 3 limit kinds × 2 modes × (100 tenants + __other__), and margin
		// for histograms that gained buckets.
		require.Less(t, after-before[n.name], 3*2*101+100, n.name)
	}
	requireAllServing(t, c)
}

// TestHostileFullDiskWAL: with the WAL on a small filesystem and the
// backend down, the disk filled inside the first segment, and after the
// backend was back and had everything, the ingester still answered 429
// forever, restart or not.
func TestHostileFullDiskWAL(t *testing.T) {
	disk := testfs.MountTmpfs(t, "1m")
	// The only bound is the filesystem: max_size_bytes is above its size.
	wc := newWALClusterOn(t, 1, func() string { return filepath.Join(disk, "wal") }, "--wal.max-size-bytes=1073741824")
	ing := wc.ingesters[0]
	wc.stopBackend()

	var out bytes.Buffer
	lg := wc.startLoadgen(&out, 4000, 800) // 80,000 samples, retried until accepted
	require.Eventually(t, func() bool {
		return metricSum(ing.url("/metrics"), `promgov_ingester_push_requests_total{code="ResourceExhausted"`) > 0
	}, 60*time.Second, 200*time.Millisecond, "the disk never filled up")
	t.Logf("disk full: WAL at %.0f bytes, pushes refused", metricSum(ing.url("/metrics"), "promgov_wal_size_bytes"))

	start := time.Now()
	wc.restartBackend()
	rep := waitLoadgen(t, lg, &out, 180*time.Second)
	t.Logf("backend restarted; every request accepted %.1fs later (statuses %v)", time.Since(start).Seconds(), rep.StatusCounts)
	require.Positive(t, rep.StatusCounts["429"], "senders never saw 429: %v", rep.StatusCounts)
	found := wc.waitAllFound(rep)
	t.Logf("full disk: sent %d samples, acknowledged %d, found %d", rep.SentSamples, rep.AcceptedSamples, found)

	// Once everything is forwarded, writes go through at once; and still
	// after a restart on the same WAL.
	probe := func(t T, name string) (int, string) {
		code, _, msg := postRW(t, wc.writeURL(), contentTypeV1, hostileBody(t, 1, name, "__name__", name+"_other"), nil)
		return code, msg
	}
	code, msg := probe(t, "full_disk_after_drain")
	require.Equal(t, http.StatusNoContent, code, msg)
	ing.proc.Stop(t)
	wc.startWALIngester(ing)
	wc.waitActive(1)
	// The distributor's connection to the restarted ingester may still be
	// redialling: that is a 503, which senders retry; a 429 would be the
	// wedged WAL.
	// A 429 ends the wait at once and fails below.
	eventually(t, func(ct *assert.CollectT) bool {
		code, msg = probe(ct, "full_disk_after_restart")
		return code == http.StatusNoContent || code == http.StatusTooManyRequests
	}, 20*time.Second, 200*time.Millisecond, "no write accepted after the restart: %v", lazy(func() any { return msg }))
	require.NotEqual(t, http.StatusTooManyRequests, code, msg)
	eventually(t, func(ct *assert.CollectT) bool { return wc.backend.count(ct, "count(full_disk_after_restart)") == 1 },
		20*time.Second, 200*time.Millisecond)
}
