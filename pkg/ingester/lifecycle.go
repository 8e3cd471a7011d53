package ingester

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/promgov/promgov/pkg/ring"
)

// StateSetter announces the ingester's ring state. Safe for concurrent use.
type StateSetter interface {
	SetState(ring.State) error
}

var _ StateSetter = (*ring.Ring)(nil)

// Lifecycle runs the gRPC server and moves the ingester through its ring
// states: it serves, announces ACTIVE, and on shutdown announces LEAVING,
// keeps serving for the drain period (so every distributor has moved its
// traffic), then stops taking pushes and waits for in-flight ones.
type Lifecycle struct {
	srv    *Server
	ring   StateSetter
	drain  time.Duration
	logger *slog.Logger
}

// NewLifecycle ties srv to the ring.
func NewLifecycle(srv *Server, r StateSetter, drain time.Duration, logger *slog.Logger) *Lifecycle {
	return &Lifecycle{srv: srv, ring: r, drain: drain, logger: logger}
}

// Run blocks until ctx is cancelled and the leave sequence is done.
func (l *Lifecycle) Run(ctx context.Context) error {
	serveCtx, stop := context.WithCancel(context.Background())
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- l.srv.Run(serveCtx) }()

	l.srv.SetServing(true)
	if err := l.ring.SetState(ring.StateActive); err != nil {
		return fmt.Errorf("announce ACTIVE: %w", err)
	}
	l.logger.Info("ingester is ACTIVE", "grpc_address", l.srv.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	if err := l.ring.SetState(ring.StateLeaving); err != nil {
		l.logger.Warn("announce LEAVING failed; stopping anyway", "err", err)
	}
	l.logger.Info("ingester is LEAVING; draining pushes", "drain_period", l.drain)
	t := time.NewTimer(l.drain)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
	}
	stop()
	return <-errc
}
