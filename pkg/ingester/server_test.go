package ingester

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/forward"
)

// TestServerStopRightAfterStart: a server asked to stop as soon as it starts
// (a process interrupted during start-up, or a short test) stops cleanly,
// even when GracefulStop wins the race against the Serve goroutine.
func TestServerStopRightAfterStart(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for range 200 {
		svc := NewService(ServiceDeps{Log: appendFunc(func(context.Context, forward.Batch) error { return nil }), Logger: logger, Registerer: prometheus.NewRegistry()})
		srv, err := NewServer(Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20}, svc, logger, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.NoError(t, srv.Run(ctx))
	}
}
