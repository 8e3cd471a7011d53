package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// process is a started binary whose output goes to a log file that is
// printed when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	mu   sync.Mutex
	err  error
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
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("---- %s log (tail) ----\n%s", name, b)
		}
	})
	return p
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *process) Stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.Kill()
		t.Fatalf("%s did not stop within 60s of SIGTERM", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NoError(t, p.err, "%s exited with an error", p.name)
}

// Wait waits for the process to exit by itself and returns its error.
func (p *process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s", p.name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
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
