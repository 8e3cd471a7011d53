// Command ingester is the promgov governor: it owns the metrics the ring
// hashes to it and forwards what it accepts to the storage backend.
//
// SIGHUP and POST /-/reload re-read the configuration: the cardinality
// limits (exemptions included), the aggregation rules and the log level
// change at once; every other changed field is logged as needing a restart
// (docs/operations.md).
//
//	ingester check-config FILE...   validate configuration files for both binaries
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	okrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/internal/proc"
	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/cluster"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/gctune"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/govsync"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/reservoir"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/ui"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/wal"
	"github.com/promgov/promgov/pkg/web"
)

func main() {
	os.Exit(proc.ExitCode(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "check-config" {
		return config.IngesterCheckConfigCommand(args[1:], stdout)
	}
	cfg, err := config.ParseIngester(args, stderr)
	if errors.Is(err, config.ErrVersion) {
		return proc.PrintVersion(stdout, "ingester")
	}
	if err != nil {
		return err
	}
	logger, logLevel := config.NewLogger(&cfg.Common, stderr)
	logger = logger.With("component", "ingester")
	proc.LogStart(logger)
	reg := proc.NewRegistry()

	backends, err := forward.ResolveBackends(cfg.Backend, cfg.Backends)
	if err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	// The WAL opens first (repairing a torn tail) and closes last, after
	// pushes have stopped and the forwarder has committed what it sent.
	walLog, err := wal.Open(cfg.WAL, nil, logger, reg)
	if err != nil {
		return fmt.Errorf("open wal in %s: %w", cfg.WAL.Dir, err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := walLog.Close(closeCtx); err != nil {
			logger.Error("closing the WAL failed", "err", err)
		}
	}()
	// One forwarder per backend, each with its own position in the WAL.
	fwd, err := forward.NewBackends(cfg.Forward, backends, walLog, cfg.WAL.Dir, logger, reg)
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	// Cardinality tracking: restored from its snapshot (next to the WAL
	// unless --cardinality.snapshot-path says otherwise), snapshotted by
	// its Run actor and once more when run returns (before the WAL closes).
	// A reload replaces its limits.
	tracker, err := cardinality.New(cfg.Cardinality, cardinality.Options{Registerer: reg, Logger: logger.With("component", "cardinality")})
	if err != nil {
		return fmt.Errorf("cardinality: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := tracker.Close(closeCtx); err != nil {
			logger.Error("writing the cardinality snapshot failed", "err", err)
		}
	}()
	// Aggregation rules (docs/aggregation.md): the engine exists without
	// rules too, so that a reload can add some; without any, a push costs
	// it one atomic load.
	cfg.Aggregate.Overflow = cfg.Cardinality.Limits.UsesOverflow()
	aggLogger := logger.With("component", "aggregation")
	aggEngine, err := aggregate.NewEngine(cfg.Aggregate, aggLogger, reg)
	if err != nil {
		return fmt.Errorf("aggregations: %w", err)
	}
	// The impact preview's sample of each owned metric's series (nil when
	// --preview.reservoir.series-per-metric=0).
	res := reservoir.New(cfg.PreviewReservoir, reg)
	svc := ingester.NewService(serviceDeps(walLog, tracker, aggEngine, cfg.Aggregate.Overflow, res, logger, reg))
	grpcSrv, err := ingester.NewServer(cfg.Ingester, svc, logger, reg)
	if err != nil {
		return err
	}
	rg, err := ring.New(cfg.Memberlist, ring.RoleIngester, grpcSrv.Addr(), logger, reg)
	if err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	lifecycle := ingester.NewLifecycle(grpcSrv, rg, cfg.Ingester.LeaveDrainPeriod, logger)
	aggSvc := aggregate.NewService(aggEngine, cfg.Aggregate.SnapshotPath, ingester.WALOutputs{Log: walLog},
		ingester.RingOwns(rg), aggLogger, reg)
	if err := aggSvc.Restore(); err != nil {
		return err
	}

	// Query statistics of the metrics this ingester owns: distributors
	// send them (RecordAccess), they move with a metric's cardinality state
	// on a ring change, and they are persisted next to the WAL (unless
	// --usage.snapshot-path says otherwise).
	access := usage.NewAccessStats(cfg.Usage.Queries.MaxMetrics, cfg.Usage.Queries.MaxUsersPerMetric)
	accessSnap := usage.NewAccessSnapshotter(access, cfg.Usage.Queries.SnapshotPath, cfg.Usage.Queries.SnapshotInterval,
		logger.With("component", "usage"), reg)

	// The analytics API answers on the web port in JSON and, for
	// distributors, over the cluster service; peers sync tenant sketches
	// and hand off moved metrics over it too.
	analyticsMux := analyticsAPI(tracker, access, cfg.TenantHeader(), logger)
	analyticsMux.Handle("GET "+aggregate.PathMetrics, aggregate.Handler(aggregate.EngineStats(aggEngine), cfg.TenantHeader()))
	grpcSrv.RegisterCluster(ingester.NewAnalytics(ingester.AnalyticsDeps{
		Node: rg.Self().Name, State: tracker, Access: access,
		Status:      ui.StatusSource{Gatherer: reg, Node: rg.Self().Name, Role: ui.RoleIngester},
		Aggregation: aggEngine,
		Preview:     previewSource(res, tracker, aggEngine),
	}))
	// Connections to peers, closed as peers leave the ring (peerPool.Run).
	grpcCreds, err := cfg.IngesterClient.DialOption()
	if err != nil {
		return &config.UsageError{Err: err}
	}
	peerPool := cluster.NewPool(grpcCreds)
	defer peerPool.Close()
	sketchSync := cluster.NewSketchSync(cfg.Cluster, cluster.SketchSyncDeps{
		Members: rg, Clients: peerPool, Store: tracker, Logger: logger, Registerer: reg,
	})
	handoff := cluster.NewHandoff(cfg.Cluster, cluster.HandoffDeps{
		Ring: rg, Clients: peerPool, Store: tracker, Access: access, Aggregation: aggEngine,
		Logger: logger, Registerer: reg,
	})

	authMW, err := newAuth(cfg, logger, reg)
	if err != nil {
		return &config.UsageError{Err: err}
	}
	// Governance as code: with a store, the active version's limits and
	// aggregation rules replace the file's (docs/governance.md); the
	// file's other aggregation settings (max groups, overflow) stay.
	aggs := &aggregationSettings{file: cfg.Aggregate, overflow: cfg.Aggregate.Overflow, engine: aggEngine, logger: aggLogger}
	gov, err := govsync.NewNode(&cfg.Common, config.RoleIngester, rg, func(doc govstore.Document) error {
		if err := aggs.apply(nil, doc.Aggregations); err != nil {
			return err
		}
		return tracker.SetLimits(doc.Cardinality.Limits)
	}, nil, logger, reg) // ingesters drop nothing by rule: no automatic rollback here
	if err != nil {
		return fmt.Errorf("governance: %w", err)
	}
	jobs, closeJobs, err := newRetro(cfg, backends, rg, logger, reg)
	if err != nil {
		return err
	}
	defer func() { _ = closeJobs() }()
	reloader := proc.NewReloader(func() error {
		parse := func() (*config.IngesterConfig, error) { return config.ParseIngester(args, io.Discard) }
		return proc.ReloadConfig(parse, cfg, logLevel, logger, func(next *config.IngesterConfig) error {
			policy, err := auth.Load(next.Auth, next.Web.ConfigFile)
			if err != nil {
				return err
			}
			doc, err := gov.OnReload(&next.Common)
			if err != nil {
				return err
			}
			versioned := (*[]aggregate.RuleConfig)(nil)
			if doc != nil {
				next.Cardinality.Limits = doc.Cardinality.Limits
				versioned = doc.Aggregations
			}
			if err := aggs.apply(&next.Aggregate, versioned); err != nil {
				return err
			}
			if err := tracker.SetLimits(next.Cardinality.Limits); err != nil {
				return fmt.Errorf("cardinality.%w", err)
			}
			authMW.SetPolicy(policy)
			logger.Info("cardinality limits reloaded", "exempt", len(next.Cardinality.Limits.Exempt),
				"tenant_overrides", len(next.Cardinality.Limits.Tenants), "metric_overrides", len(next.Cardinality.Limits.Metrics))
			return nil
		})
	}, logger, reg)

	mux := http.NewServeMux()
	mux.Handle("POST /-/reload", reloader.Handler())
	mux.Handle("PUT /-/reload", reloader.Handler())
	rg.RegisterRoutes(mux)
	gov.Register(mux)
	mountAPI(mux, analyticsMux, logger)
	mux.Handle("GET "+aggregate.PathMetrics, analyticsMux)
	uiHistory, err := mountUI(mux, cfg, rg.Self().Name, tracker, reg, logger)
	if err != nil {
		return err
	}
	webSrv, err := web.New(cfg.Web, mux, reg, func() error { return ringReady(rg) }, logger)
	if err != nil {
		return err
	}
	webSrv.Use(authMW.Wrap)

	// Actors stop in the order they are added (oklog/run calls each
	// interrupt in turn and an interrupt below blocks until its actor is
	// done):
	//  1. signals, and the SIGHUP reload loop;
	//  2. gRPC: announce LEAVING, keep serving for the drain period so
	//     distributors move traffic, then finish in-flight pushes;
	//  3. forwarder: stop reading the WAL, flush what it holds to the
	//     backend within --forward.flush-deadline and commit the WAL
	//     checkpoint; the rest stays in the WAL for the next start;
	//  3b. cardinality: ring-change handoff, peer sketch sync and the
	//     tracker's maintenance stop (peers pulled this ingester's metrics
	//     and their query statistics while it drained); the final
	//     cardinality snapshot is written when run returns;
	//  3c. query statistics: the final snapshot of what was not moved;
	//  3d. peer connections: closed once handoff and sync stopped;
	//  4. ring: leave the memberlist cluster;
	//  5. HTTP last, so /metrics and probes answer during shutdown;
	//  6. the GC tuner: the memory limit it set is restored;
	//  7. the WAL is closed when run returns.
	var g okrun.Group
	g.Add(okrun.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	proc.AddActor(&g, reloader.Run)
	proc.AddActor(&g, lifecycle.Run)
	// 2b. aggregation: after pushes stopped, the last intervals due are
	// closed and the state snapshotted.
	proc.AddActor(&g, aggSvc.Run)
	proc.AddActor(&g, fwd.Run)
	proc.AddActor(&g, handoff.Run)
	proc.AddActor(&g, sketchSync.Run)
	proc.AddActor(&g, tracker.Run)
	proc.AddActor(&g, accessSnap.Run)
	proc.AddActor(&g, res.Run)
	proc.AddActor(&g, func(ctx context.Context) error { return peerPool.Run(ctx, rg) })
	if uiHistory != nil {
		proc.AddActor(&g, uiHistory.Run)
	}
	proc.AddActor(&g, gov.Run)
	if jobs != nil {
		// Retrospective jobs: stop where they are and release them (the
		// ring's next choice resumes them from their checkpoint).
		proc.AddActor(&g, jobs.Run)
	}
	proc.AddActor(&g, rg.Run)
	proc.AddActor(&g, webSrv.Run)
	proc.AddActor(&g, gctune.New(cfg.GC, logger).Run)
	return proc.RunGroup(&g, logger)
}

// ringReady reports whether this ingester is ACTIVE in the ring.
func ringReady(r *ring.Ring) error {
	if s := r.Self().State; s != ring.StateActive {
		return fmt.Errorf("ring state is %s, not ACTIVE", s)
	}
	return nil
}

// aggregationSettings applies aggregation rules at once
// (aggregate.Engine.Reload): the file's, or a governance version's over
// the file's other settings. The overflow aggregation keeps the state it
// started with: turning it on needs a restart, since the push path was
// built without it. Safe for concurrent use (a reload and a version).
type aggregationSettings struct {
	mu       sync.Mutex
	file     aggregate.Config // the file's, as last loaded
	overflow bool
	engine   *aggregate.Engine
	logger   *slog.Logger
}

// apply runs file (nil: the file as last loaded) with versioned's rules
// when the governance version holds some (nil: the file's rules).
func (a *aggregationSettings) apply(file *aggregate.Config, versioned *[]aggregate.RuleConfig) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.file
	if file != nil {
		c = *file
	}
	if versioned != nil {
		c.Rules = *versioned
	}
	c.Overflow = a.overflow
	sum, err := a.engine.Reload(c, time.Now())
	if err != nil {
		return fmt.Errorf("aggregations: %w", err)
	}
	if file != nil {
		a.file = *file
	}
	if len(sum.Added)+len(sum.Changed)+len(sum.Removed) > 0 {
		a.logger.Info("aggregation rules reloaded; replaced and removed rules hand over at the end of their open interval",
			"added", sum.Added, "changed", sum.Changed, "removed", sum.Removed, "unchanged", len(sum.Unchanged))
	}
	return nil
}

// previewSource is the impact preview over the reservoir, with the
// aggregation rules the ingester runs; none without a reservoir.
func previewSource(res *reservoir.Reservoir, tracker *cardinality.Tracker, agg *aggregate.Engine) ingester.PreviewSource {
	if res == nil {
		return nil
	}
	return preview.NewIngester(res, tracker, agg)
}

// serviceDeps are the Push service's parts: the engine aggregates (with
// the rules a reload gives it) and folds refused series when a limit
// overflows (overflow); the reservoir samples for the preview; the others
// are the service's no-ops.
func serviceDeps(log ingester.Log, tracker *cardinality.Tracker, e *aggregate.Engine, overflow bool, res *reservoir.Reservoir,
	logger *slog.Logger, reg prometheus.Registerer) ingester.ServiceDeps {
	d := ingester.ServiceDeps{Log: log, Cardinality: tracker, Logger: logger, Registerer: reg}
	if res != nil {
		d.Sampler = res
	}
	d.Aggregator = e
	if overflow {
		d.Overflow, d.OverflowPolicy = e, tracker
	}
	return d
}
