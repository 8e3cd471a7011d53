package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestPprofFlag(t *testing.T) {
	for name, tc := range map[string]struct {
		enable bool
		want   int
	}{
		"on by default serves the index": {enable: true, want: http.StatusOK},
		"off answers 404":                {enable: false, want: http.StatusNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{ListenAddress: "127.0.0.1:0", ShutdownTimeout: 5e9, EnablePprof: tc.enable}
			srv := startServer(t, cfg)

			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
				resp, err := http.Get("http://" + srv.Addr() + path)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				require.Equal(t, tc.want, resp.StatusCode, path)
			}
		})
	}
}

// startServer runs a server of cfg (with an empty mux) until the test
// ends, and checks it stops cleanly.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	srv, err := New(cfg, http.NewServeMux(), prometheus.NewRegistry(), func() error { return nil }, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return srv
}
