package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWaitActiveOutlastsEarlyFailures: a distributor that is still
// starting fails the first polls of its ring (on a loaded machine its
// HTTP port opens after the ingesters joined its gossip port). waitActive
// must take such a failure as one more attempt, not as the test's failure,
// and must not return before the distributor routes to the ingesters (its
// placement is rebuilt after its member list changes). The stand-in
// distributor drops the connection of its first three requests without an
// answer, then lists an ACTIVE ingester without partitions twice, then
// with all of them.
func TestWaitActiveOutlastsEarlyFailures(t *testing.T) {
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /promgov/api/v1/status/ring", func(w http.ResponseWriter, _ *http.Request) {
		n := requests.Add(1)
		if n <= 3 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close() // the client sees the connection fail
			}
			return
		}
		partitions := 0
		if n > 5 {
			partitions = 271
		}
		fmt.Fprintf(w, `{"status":"success","data":{"partition_count":271,"members":[`+
			`{"name":"distributor","role":"distributor","state":"ACTIVE","partitions":0},`+
			`{"name":"ingester-1","role":"ingester","state":"ACTIVE","partitions":%d}]}}`, partitions)
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Ready.") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The process behind the node only has to be running.
	standIn := startProcess(t, "distributor-stand-in", "sleep", "600")
	c := &cluster{t: t, distributor: &node{name: "distributor", webAddr: ln.Addr().String(), proc: standIn}}
	c.waitActive(1)
	if n := requests.Load(); n <= 5 {
		t.Fatalf("waitActive returned after %d ring requests, before the stand-in placed partitions on the ingester", n)
	}
}

// orphanHelper names the environment variable under which
// TestProcessDiesWithTheTestBinary's own test binary, run again, plays the
// integration test that hits go test's -timeout.
const orphanHelper = "PROMGOV_ORPHAN_HELPER"

// TestProcessDiesWithTheTestBinary: go test's -timeout panics, and a panic
// runs no cleanup, so the processes a test started used to outlive it (a
// whole cluster, holding its ports and CPU). The test runs this test binary
// again with a 2 s timeout; that run starts a process, prints its PID and
// waits until the timeout kills it. The process must die with it.
func TestProcessDiesWithTheTestBinary(t *testing.T) {
	if os.Getenv(orphanHelper) != "" {
		p := startProcess(t, "orphan", "sleep", "600")
		fmt.Printf("pid %d\n", p.cmd.Process.Pid)
		select {} // until -test.timeout panics
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestProcessDiesWithTheTestBinary$", "-test.timeout=2s", "-test.v")
	// The helper's panic runs no cleanup either: its temporary directories
	// go under this test's, which this test's cleanup removes.
	helper.Env = append(os.Environ(), orphanHelper+"=1", "PROMGOV_PROMETHEUS=", "PROMGOV_REQUIRE_INTEGRATION=", "TMPDIR="+t.TempDir())
	out, err := helper.CombinedOutput()
	require.Error(t, err, "the helper run must end by its timeout:\n%s", out)
	require.Contains(t, string(out), "test timed out", "the helper run must end by its timeout")
	m := regexp.MustCompile(`(?m)^pid (\d+)$`).FindSubmatch(out)
	require.NotNil(t, m, "the helper printed no pid:\n%s", out)
	pid, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	// Dead is gone, or a zombie if whoever inherited it does not reap.
	alive := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		return len(fields) > 0 && fields[0] != "Z"
	}
	if !assert.Eventually(t, func() bool { return !alive() }, 10*time.Second, 20*time.Millisecond,
		"process %d, started by the timed-out run, is still running", pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
