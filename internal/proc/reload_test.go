package proc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReloaderHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var logs bytes.Buffer // written by Reload, on this goroutine
	var next error
	applied := 0
	r := NewReloader(func() error {
		if next == nil {
			applied++
		}
		return next
	}, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	defer r.stopSignals()
	start := time.Unix(1700000000, 0)
	clock := start
	r.now = func() time.Time { return clock }
	require.Equal(t, 1.0, testutil.ToFloat64(r.lastSuccess), "the start is a successful load")

	h := r.Handler()
	for _, step := range []struct {
		name      string
		apply     error
		method    string
		wantCode  int
		wantGauge float64
		wantTS    time.Time
	}{
		// One step a minute; the timestamp is the last success's.
		{"valid configuration", nil, http.MethodPost, http.StatusOK, 1, start},
		{"invalid configuration keeps the running one", errors.New(`wal.sync_policy: "bogus" is unknown`), http.MethodPost, http.StatusBadRequest, 0, start},
		{"valid again, by PUT", nil, http.MethodPut, http.StatusOK, 1, start.Add(2 * time.Minute)},
	} {
		next = step.apply
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(step.method, "/-/reload", nil))
		require.Equal(t, step.wantCode, w.Code, "%s: %s", step.name, w.Body.String())
		require.Equal(t, step.wantGauge, testutil.ToFloat64(r.lastSuccess), step.name)
		require.Equal(t, float64(step.wantTS.Unix()), testutil.ToFloat64(r.lastSuccessTS), step.name)
		if step.apply != nil {
			require.Contains(t, w.Body.String(), "failed to reload config: "+step.apply.Error())
			require.Contains(t, logs.String(), "configuration reload failed; the running configuration stays")
		}
		clock = clock.Add(time.Minute)
	}
	require.Equal(t, 2, applied)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/-/reload", nil))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
}

// TestReloaderSIGHUP: SIGHUP reloads instead of killing the process, also
// before Run has started.
func TestReloaderSIGHUP(t *testing.T) {
	reloaded := make(chan struct{}, 2)
	r := NewReloader(func() error { reloaded <- struct{}{}; return nil }, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP), "an early SIGHUP is caught, not fatal")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-reloaded:
	case <-time.After(10 * time.Second):
		t.Fatal("the early SIGHUP never reloaded")
	}
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP))
	select {
	case <-reloaded:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP never reloaded")
	}
	cancel()
	require.NoError(t, <-done)
}
