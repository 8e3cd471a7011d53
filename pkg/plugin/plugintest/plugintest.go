// Package plugintest builds WebAssembly plugins from Go source for tests,
// with the standard toolchain (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared).
// A build takes seconds, so a Builder builds each package (and ldflags) once
// per test binary: create one in TestMain and remove its directory after
// the tests.
package plugintest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Builder builds plugins into a directory, each once. It is safe for
// concurrent use; concurrent builds of one package wait for the first.
type Builder struct {
	dir   string
	mu    sync.Mutex
	built map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// NewBuilder builds into dir, which must exist.
func NewBuilder(dir string) *Builder {
	return &Builder{dir: dir, built: map[string]*build{}}
}

// Build builds the main package pkg (a directory or an import path) with
// extra go build flags and returns the .wasm path; a failure fails tb.
func (b *Builder) Build(tb testing.TB, pkg string, flags ...string) string {
	tb.Helper()
	path, err := b.build(pkg, flags...)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

func (b *Builder) build(pkg string, flags ...string) (string, error) {
	key := fmt.Sprint(pkg, flags)
	b.mu.Lock()
	bd, ok := b.built[key]
	if !ok {
		bd = &build{}
		b.built[key] = bd
	}
	b.mu.Unlock()
	bd.once.Do(func() {
		sum := sha256.Sum256([]byte(key))
		bd.path = filepath.Join(b.dir, filepath.Base(pkg)+"-"+hex.EncodeToString(sum[:4])+".wasm")
		args := append([]string{"build", "-buildmode=c-shared", "-o", bd.path}, flags...)
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			bd.err = fmt.Errorf("build plugin %s: %w\n%s", pkg, err, out)
		}
	})
	return bd.path, bd.err
}

// Main is a TestMain for packages that build plugins: it makes a temporary
// build directory, sets *b to a Builder on it, runs the tests, removes the
// directory and, when the tests passed, fails on leaked goroutines. It
// returns the exit code for os.Exit.
func Main(m *testing.M, b **Builder) int {
	dir, err := os.MkdirTemp("", "promgov-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*b = NewBuilder(dir)
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}
