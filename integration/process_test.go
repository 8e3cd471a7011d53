package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	// quitTimeout bounds the wait for a process to exit after SIGQUIT (a
	// Go program takes milliseconds to print its stacks); past it, the
	// process is killed.
	quitTimeout = 10 * time.Second
	// logTail bounds what report prints of the log before any SIGQUIT,
	// from its end; stacksHead bounds what it prints of the stack dump
	// after it, from its start: the goroutine the signal arrived on, then
	// the others in the order they were created, main first.
	logTail    = 8000
	stacksHead = 64 << 10
	// debugDump names the environment variable that asks for every
	// process's stacks and whole log in a directory (see report).
	debugDump = "PROMGOV_DEBUG_DUMP"
)

// frameAddrs matches what a Go stack dump adds to each frame on SIGQUIT
// (the runtime prints it like a crash: with GOTRACEBACK=system detail);
// report leaves it out (a fifth of the dump).
var frameAddrs = regexp.MustCompile(` fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x[0-9a-f]+`)

// process is a started binary whose output goes to a log file that is
// printed when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	// ready is whether the last harness wait for the process to become
	// ready or serve succeeded (false until one did).
	ready atomic.Bool

	mu  sync.Mutex
	err error
	// quitAt is the size of the log when SIGQUIT was sent (what follows
	// is the stack dump), -1 if it never was; quitWhy is why it was sent.
	quitAt  int64
	quitWhy string
}

func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	return startProcessStdout(t, name, nil, bin, args...)
}

// startProcessStdout is startProcess with stdout sent to w (nil: the log).
func startProcessStdout(t *testing.T, name string, w io.Writer, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if w != nil {
		cmd.Stdout = w
	}
	// The process is killed when the test binary dies, even by a panic
	// such as go test's -timeout, which runs no cleanup: otherwise a
	// cluster outlives the test, holding its ports and taking CPU from
	// whatever runs next. The kernel sends Pdeathsig when the thread that
	// started the child ends, not the process, so the start and the wait
	// run on one goroutine locked to its thread: the thread ends only
	// after the child has been reaped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), quitAt: -1}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	if err := <-started; err != nil {
		_ = f.Close()
		require.NoError(t, err, "start %s", name)
	}
	t.Cleanup(func() {
		if t.Failed() {
			p.report(t)
		}
		p.Kill()
	})
	return p
}

// report prints, for p's failed test, the tail of p's log and, if p stalled,
// its goroutine stacks. p stalled if it is still running and not ready (no
// harness wait saw it ready or serving, or the last one gave up on it), or
// if it did not exit when Stop or Wait expected it to (they dump it
// themselves). A stalled process is sent SIGQUIT (quit), on which a Go
// program writes every goroutine's stack to stderr and exits with status 2.
// stderr is the log file itself, not a pipe, so once the process has exited
// the file holds everything it wrote, the dump included.
//
// With PROMGOV_DEBUG_DUMP=dir, every process still running is dumped, ready
// or not, and each process's whole log is kept as
// dir/<test name>/<process name>-<pid>.log; the stacks of a ready process
// are only there, not in the test log.
func (p *process) report(t *testing.T) {
	dir := os.Getenv(debugDump)
	switch {
	case !p.ready.Load():
		p.quit("not ready when the test failed")
	case dir != "":
		p.quit(debugDump)
	}
	p.Kill()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Logf("---- %s log: %v", p.name, err)
		return
	}
	kept := debugDump + "=dir keeps all"
	if dir != "" {
		kept = filepath.Join(dir, t.Name(), fmt.Sprintf("%s-%d.log", p.name, p.cmd.Process.Pid))
		err := os.MkdirAll(filepath.Dir(kept), 0o755)
		if err == nil {
			err = os.WriteFile(kept, b, 0o644)
		}
		if err != nil {
			t.Logf("%s: %v", debugDump, err)
		}
	}
	p.mu.Lock()
	at, why := min(p.quitAt, int64(len(b))), p.quitWhy
	p.mu.Unlock()
	logged, stacks := b, []byte(nil)
	if at >= 0 {
		logged, stacks = b[:at], frameAddrs.ReplaceAll(b[at:], nil)
	}
	if len(logged) > logTail {
		logged = logged[len(logged)-logTail:]
	}
	t.Logf("---- %s log (tail) ----\n%s", p.name, logged)
	switch {
	case at < 0:
	case len(stacks) == 0:
		t.Logf("---- %s wrote nothing on SIGQUIT (%s); it ended with %v ----", p.name, why, p.exitErr())
	case why == debugDump:
		t.Logf("---- %s goroutine stacks on SIGQUIT: in %s ----", p.name, kept)
	case len(stacks) > stacksHead:
		t.Logf("---- %s goroutine stacks on SIGQUIT (%s), the first %d of %d bytes (%s) ----\n%s",
			p.name, why, stacksHead, len(stacks), kept, stacks[:stacksHead])
	default:
		t.Logf("---- %s goroutine stacks on SIGQUIT (%s) ----\n%s", p.name, why, stacks)
	}
}

// quit sends SIGQUIT to p, if it still runs, and waits up to quitTimeout
// for it to exit (then kills it). why heads the stacks in report.
func (p *process) quit(why string) {
	if !p.Running() {
		return
	}
	at := int64(0) // the whole log is taken for the dump if its size is unknown
	if fi, err := os.Stat(p.log); err == nil {
		at = fi.Size()
	}
	p.mu.Lock()
	p.quitAt, p.quitWhy = at, why
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(quitTimeout):
		p.Kill()
	}
}

// Stop sends SIGTERM and waits for a clean exit; a process that does not
// exit has its stacks dumped (quit) and fails the test.
func (p *process) Stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.quit("no exit within 60s of SIGTERM")
		t.Fatalf("%s did not stop within 60s of SIGTERM", p.name)
	}
	require.NoError(t, p.exitErr(), "%s exited with an error", p.name)
}

// Wait waits for the process to exit by itself and returns its error; a
// process that does not exit in time has its stacks dumped (quit).
func (p *process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.quit(fmt.Sprintf("no exit within %s", timeout))
		return fmt.Errorf("%s did not exit within %s", p.name, timeout)
	}
	return p.exitErr()
}

// exitErr is how the process ended (nil while it runs).
func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Kill sends SIGKILL (if still running) and waits.
func (p *process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Running reports whether the process has not exited.
func (p *process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
