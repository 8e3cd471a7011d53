package reloader

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// endpoint is a reload endpoint answering with the codes of answer, in
// turn (the last one repeats), and recording every call.
type endpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  int
	answer []int
}

func newEndpoint(t *testing.T, answer ...int) *endpoint {
	e := &endpoint{answer: answer}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/-/reload" {
			http.Error(w, "not a reload", http.StatusNotFound)
			return
		}
		e.mu.Lock()
		code := e.answer[min(e.calls, len(e.answer)-1)]
		e.calls++
		e.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) Calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// start runs a reloader on file and urls until the test ends.
func start(t *testing.T, file string, urls ...string) {
	cfg := DefaultConfig()
	cfg.Files, cfg.URLs, cfg.Interval = []string{file}, urls, 5*time.Millisecond
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- New(cfg, http.DefaultClient, slog.New(slog.DiscardHandler)).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// quiet asserts that n stays the number of calls for a few intervals.
func quiet(t *testing.T, e *endpoint, n int) {
	t.Helper()
	require.Never(t, func() bool { return e.Calls() != n }, 100*time.Millisecond, 5*time.Millisecond)
}

func TestReloader(t *testing.T) {
	tests := map[string]struct {
		answer []int
		// wantCalls after the first change; then quiet.
		wantCalls int
	}{
		"ok at once":                      {answer: []int{200}, wantCalls: 1},
		"5xx retried until ok":            {answer: []int{503, 500, 200}, wantCalls: 3},
		"4xx (invalid file) not retried":  {answer: []int{400}, wantCalls: 1},
		"404 (no reload endpoint) logged": {answer: []int{404}, wantCalls: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "promgov.yml")
			require.NoError(t, writeAtomically(t, file, []byte("log_level: info\n")))
			e := newEndpoint(t, tc.answer...)
			start(t, file, e.srv.URL+"/-/reload")

			quiet(t, e, 0) // the starting content counts as applied
			require.NoError(t, writeAtomically(t, file, []byte("log_level: debug\n")))
			require.Eventually(t, func() bool { return e.Calls() == tc.wantCalls }, 5*time.Second, time.Millisecond)
			quiet(t, e, tc.wantCalls)
			// Rewriting the same content is no change.
			require.NoError(t, writeAtomically(t, file, []byte("log_level: debug\n")))
			quiet(t, e, tc.wantCalls)
			// Another change reloads again, even after a refusal.
			require.NoError(t, writeAtomically(t, file, []byte("log_level: warn\n")))
			require.Eventually(t, func() bool { return e.Calls() == tc.wantCalls+1 }, 5*time.Second, time.Millisecond)
		})
	}
}

// TestReloaderConfigMapSwap changes the file the way Kubernetes updates a
// ConfigMap volume: the watched path is a symlink into ..data, which is
// itself a symlink swapped atomically to a new directory.
func TestReloaderConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	write := func(version, content string) {
		d := filepath.Join(dir, version)
		require.NoError(t, os.Mkdir(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "promgov.yml"), []byte(content), 0o644))
		tmp := filepath.Join(dir, "..data_tmp")
		require.NoError(t, os.Symlink(version, tmp))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, "..data")))
	}
	write("..v1", "log_level: info\n")
	require.NoError(t, os.Symlink("..data/promgov.yml", filepath.Join(dir, "promgov.yml")))
	a, b := newEndpoint(t, 200), newEndpoint(t, 200)
	start(t, filepath.Join(dir, "promgov.yml"), a.srv.URL+"/-/reload", b.srv.URL+"/-/reload")
	quiet(t, a, 0)
	write("..v2", "log_level: debug\n")
	require.Eventually(t, func() bool { return a.Calls() == 1 && b.Calls() == 1 }, 5*time.Second, time.Millisecond)
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Files, c.URLs = []string{"/etc/promgov/promgov.yml"}, []string{"http://127.0.0.1:9500/-/reload"}
		return c
	}
	tests := map[string]struct {
		mutate  func(*Config)
		wantErr string
	}{
		"valid":       {mutate: func(*Config) {}},
		"no file":     {mutate: func(c *Config) { c.Files = nil }, wantErr: "file:"},
		"no url":      {mutate: func(c *Config) { c.URLs = nil }, wantErr: "url:"},
		"bad url":     {mutate: func(c *Config) { c.URLs = []string{"127.0.0.1:9500/-/reload"} }, wantErr: "url:"},
		"no interval": {mutate: func(c *Config) { c.Interval = 0 }, wantErr: "interval:"},
		"no timeout":  {mutate: func(c *Config) { c.Timeout = 0 }, wantErr: "timeout:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// writeAtomically replaces file as configuration tools do (a new file
// renamed over the old), so no read sees it half-written.
func writeAtomically(t *testing.T, file string, b []byte) error {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
