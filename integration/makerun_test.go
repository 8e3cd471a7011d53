package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/promgov/promgov/internal/testport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file run `make run`'s script, deploy/local/run.sh, as a
// user would, on ports of their own (PORT_BASE) and with the binaries the
// tests built (PROMGOV_BIN).

// makeRunPorts is how many ports run.sh uses from PORT_BASE.
const makeRunPorts = 13

// freePortBase returns a PORT_BASE whose makeRunPorts ports are free for TCP
// and UDP on 127.0.0.1 right now.
func freePortBase(t *testing.T) int {
	t.Helper()
	return testport.Range(t, makeRunPorts)
}

// runScript is deploy/local/run.sh with env added to the environment.
func runScript(env ...string) *exec.Cmd {
	cmd := exec.Command("bash", "deploy/local/run.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runDirProcesses lists the processes whose environment names runDir as
// PROMGOV_RUN_DIR: run.sh and everything it started, in whatever session.
func runDirProcesses(runDir string) []string {
	marker := []byte("PROMGOV_RUN_DIR=" + runDir + "\x00")
	environs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var out []string
	for _, f := range environs {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), string(marker)) {
			continue
		}
		pid := filepath.Base(filepath.Dir(f))
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		out = append(out, pid+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// killRunDirProcesses kills what a failed test left behind.
func killRunDirProcesses(runDir string) {
	for _, p := range runDirProcesses(runDir) {
		pid, err := strconv.Atoi(p[:strings.IndexByte(p, ':')])
		if err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestMakeRunRefusesBusyPorts: a port make run needs that is in use (a
// user's own Prometheus on the backend port, say) stops make run before it
// starts anything, with an error naming the port, what needs it, who holds
// it and how to move the ports.
func TestMakeRunRefusesBusyPorts(t *testing.T) {
	for name, tc := range map[string]struct {
		offset  int // from PORT_BASE
		network string
		needs   string
	}{
		"the backend's port":            {11, "tcp", "the backend Prometheus (BACKEND_PORT)"},
		"an ingester's gRPC port":       {5, "tcp", "ingester-2's gRPC (INGESTER_GRPC_PORT+1)"},
		"the distributor's gossip, UDP": {7, "udp", "the distributor's gossip (GOSSIP_PORT)"},
	} {
		t.Run(name, func(t *testing.T) {
			base := freePortBase(t)
			port := base + tc.offset
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			if tc.network == "udp" {
				pc, err := net.ListenPacket("udp", addr)
				require.NoError(t, err)
				defer pc.Close()
			} else {
				ln, err := net.Listen("tcp", addr)
				require.NoError(t, err)
				defer ln.Close()
			}
			runDir := filepath.Join(t.TempDir(), "run")
			cmd := runScript("PORT_BASE="+strconv.Itoa(base), "PROMGOV_RUN_DIR="+runDir, "PROMGOV_BIN=/nonexistent")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "run.sh must fail: %v\n%s", err, out)
			require.Equal(t, 1, ee.ExitCode(), "%s", out)
			t.Logf("run.sh refused in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
			require.Contains(t, string(out), fmt.Sprintf("port %d/%s, for %s, is in use by ", port, tc.network, tc.needs))
			require.Contains(t, string(out), fmt.Sprintf("(pid %d)", os.Getpid()), "it names the process holding the port")
			require.Contains(t, string(out), "PORT_BASE=19500 make run")
			require.NoDirExists(t, runDir, "nothing was started")
		})
	}
}

// TestMakeRunNamesMissingCommands: on a machine without curl and
// Prometheus, and without apt-get to install them, make run says what to
// install, before it starts anything.
func TestMakeRunNamesMissingCommands(t *testing.T) {
	bin := t.TempDir()
	for _, dir := range []string{"/usr/bin", "/bin"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if slices.Contains([]string{"curl", "prometheus", "apt-get", "sudo"}, e.Name()) {
				continue
			}
			_ = os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(bin, e.Name())) // the first directory wins
		}
	}
	runDir := filepath.Join(t.TempDir(), "run")
	cmd := runScript("PATH="+bin, "PORT_BASE="+strconv.Itoa(freePortBase(t)), "PROMGOV_RUN_DIR="+runDir)
	cmd.Path = filepath.Join(bin, "bash")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "run.sh must fail: %v\n%s", err, out)
	require.Equal(t, 1, ee.ExitCode(), "%s", out)
	require.Contains(t, string(out), "make run needs curl prometheus, which are not installed.")
	require.Contains(t, string(out), "Install every prerequisite with: make deps   (Debian: apt-get install curl prometheus)")
	require.NoDirExists(t, runDir, "nothing was started")
}

// dashboardQueries returns every panel query of the make run dashboard
// (deploy/grafana), ready for the query API: Grafana's variables replaced.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/promgov-overview.json")
	require.NoError(t, err)
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				q := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*").Replace(tg.Expr)
				out[fmt.Sprintf("%s #%d", p.Title, i)] = q
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	require.NotEmpty(t, out)
	return out
}

// TestMakeRunCtrlC runs `make run 2>&1 | tee run.log` and presses Ctrl-C:
// the terminal's SIGINT reaches the script and tee at once, so tee is gone
// when the script says it is stopping. Every process make run started
// must be stopped, and the script must exit 0 (make then prints no
// "Error 130"). Before that, while it runs, every panel of the dashboard
// make run ships (deploy/grafana) must have data in the backend.
func TestMakeRunCtrlC(t *testing.T) {
	requireIntegration(t)
	prom, err := exec.LookPath("prometheus") // Debian's, as make run uses
	if err != nil {
		prom = prometheus // a Prometheus 3.x works too
	}
	// A process started with SIGINT ignored (a test run in the background
	// of a non-interactive shell) passes that on, and the script could not
	// catch Ctrl-C. Catching SIGINT here makes it the default in children.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	base := freePortBase(t)
	runDir := filepath.Join(t.TempDir(), "run")
	t.Cleanup(func() { killRunDirProcesses(runDir) })
	logPath := filepath.Join(t.TempDir(), "run.log")

	// run.sh | tee run.log, as one process group (a shell's foreground job).
	r, w, err := os.Pipe()
	require.NoError(t, err)
	run := runScript("PORT_BASE="+strconv.Itoa(base), "PROMGOV_RUN_DIR="+runDir, "PROMGOV_BIN="+binDir,
		"PROMETHEUS="+prom, "LOADGEN_RATE=200", "STOP_TIMEOUT=60")
	run.Stdout, run.Stderr = w, w
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, run.Start())
	tee := exec.Command("tee", logPath)
	tee.Stdin = r
	tee.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: run.Process.Pid}
	require.NoError(t, tee.Start())
	require.NoError(t, r.Close())
	require.NoError(t, w.Close())
	runDone := make(chan error, 1)
	go func() { runDone <- run.Wait() }()
	teeDone := make(chan error, 1)
	go func() { teeDone <- tee.Wait() }()
	logTail := func() any {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}

	// An exit of run.sh ends the wait at once and fails below (failing ct
	// would only retry until the timeout).
	var startErr error
	eventually(t, func(ct *assert.CollectT) bool {
		select {
		case startErr = <-runDone:
			runDone <- startErr
			return true
		default:
		}
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "promgov is running")
	}, 3*time.Minute, 500*time.Millisecond, "make run never came up: %v", lazy(logTail))
	require.Len(t, runDone, 0, "run.sh exited while starting (%v): %v", startErr, lazy(logTail))
	started := runDirProcesses(runDir)
	t.Logf("make run started:\n%s", strings.Join(started, "\n"))
	require.Len(t, started, 8, "run.sh and the seven processes it starts")

	// Every dashboard panel has data, read through the distributor's query
	// tap (which proxies to the backend) as Grafana would.
	tap := "http://127.0.0.1:" + strconv.Itoa(base)
	for title, q := range dashboardQueries(t) {
		eventually(t, func(ct *assert.CollectT) bool {
			var data struct {
				Result []json.RawMessage `json:"result"`
			}
			apiGet(ct, tap, "/api/v1/query", url.Values{"query": {q}}, &data)
			return len(data.Result) > 0
		}, 2*time.Minute, time.Second, "panel %q has no data: %s", title, q)
	}

	// Ctrl-C: SIGINT to the foreground process group (run.sh and tee).
	require.NoError(t, syscall.Kill(-run.Process.Pid, syscall.SIGINT))
	select {
	case err = <-runDone:
	case <-time.After(4 * time.Minute):
		t.Fatalf("run.sh did not stop within 4 minutes of Ctrl-C; still running:\n%s", strings.Join(runDirProcesses(runDir), "\n"))
	}
	require.NoError(t, err, "make run exits 0 after a clean Ctrl-C (stdout closed by then)")
	<-teeDone
	require.Empty(t, runDirProcesses(runDir), "processes make run left running after Ctrl-C")
	logs, err := os.ReadFile(filepath.Join(runDir, "logs", "distributor.log"))
	require.NoError(t, err)
	require.Contains(t, string(logs), "shut down cleanly", "the distributor was stopped, not killed")
	require.NotContains(t, string(logs), "cardinality fan-out failed", "a warning at start, before the ingesters were ACTIVE")
	for _, n := range []string{"ingester-1", "ingester-2", "ingester-3"} {
		logs, err := os.ReadFile(filepath.Join(runDir, "logs", n+".log"))
		require.NoError(t, err)
		require.NotContains(t, string(logs), "joining cluster failed", "%s retried its join at start", n)
	}
}

// TestMakeRunCtrlCOnTerminal types `make run 2>&1 | tee run.log` into a real
// terminal (a pseudo-terminal whose line discipline turns Ctrl-C into
// SIGINT for the foreground process group, as a user's does) and presses
// Ctrl-C: everything make run started stops and `make run` itself exits 0,
// not 130.
func TestMakeRunCtrlCOnTerminal(t *testing.T) {
	requireIntegration(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		prom = prometheus
	}
	sigs := make(chan os.Signal, 1) // see TestMakeRunCtrlC
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	master, slave, err := openPTY()
	require.NoError(t, err)
	defer master.Close()
	runDir := filepath.Join(t.TempDir(), "run")
	t.Cleanup(func() { killRunDirProcesses(runDir) })
	logPath := filepath.Join(t.TempDir(), "run.log")

	// -o build: the binaries are the test's (PROMGOV_BIN), not rebuilt.
	sh := exec.Command("bash", "-c", `make -s -o build run 2>&1 | tee "$RUN_LOG"; echo "make exited ${PIPESTATUS[0]}"`)
	sh.Dir = ".."
	sh.Env = append(os.Environ(), "RUN_LOG="+logPath, "PORT_BASE="+strconv.Itoa(freePortBase(t)),
		"PROMGOV_RUN_DIR="+runDir, "PROMGOV_BIN="+binDir, "PROMETHEUS="+prom, "LOADGEN_RATE=200", "STOP_TIMEOUT=60")
	sh.Stdin, sh.Stdout, sh.Stderr = slave, slave, slave
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, sh.Start())
	require.NoError(t, slave.Close())

	// The terminal's screen: everything written to it, read until the
	// last writer is gone (EIO).
	var (
		mu     sync.Mutex
		screen strings.Builder
	)
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	shown := func() string {
		mu.Lock()
		defer mu.Unlock()
		return screen.String()
	}
	done := make(chan error, 1)
	go func() { done <- sh.Wait() }()

	eventually(t, func(ct *assert.CollectT) bool {
		if len(done) > 0 {
			return true // fails below, with the screen
		}
		return strings.Contains(shown(), "promgov is running")
	}, 3*time.Minute, 500*time.Millisecond, "make run never came up: %v", lazy(func() any { return shown() }))
	require.Len(t, done, 0, "make run exited while starting:\n%s", shown())
	// The shell, make and tee carry the environment too.
	require.GreaterOrEqual(t, len(runDirProcesses(runDir)), 3+8, "the shell, make, tee, run.sh and the seven processes it starts")

	_, err = master.Write([]byte{3}) // Ctrl-C
	require.NoError(t, err)
	select {
	case err = <-done:
	case <-time.After(4 * time.Minute):
		t.Fatalf("make run did not stop within 4 minutes of Ctrl-C:\n%s", shown())
	}
	require.NoError(t, err)
	<-read
	require.Contains(t, shown(), "make exited 0", "make run exits 0 after a clean Ctrl-C")
	require.Empty(t, runDirProcesses(runDir), "processes make run left running after Ctrl-C")
	logged, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(logged), "promgov is running", "the output went through the pipe")
}
