// Command distributor is promgov's stateless front door: it receives remote
// write, applies the governance rules, validates it and pushes every series
// to the ingester that owns it.
//
// Besides serving, it has two CI subcommands (see docs/rules.md):
//
//	distributor check-config FILE...   validate configuration files (rules included)
//	distributor test-rules FILE...     run YAML rule unit tests
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	okrun "github.com/oklog/run"

	"github.com/promgov/promgov/internal/proc"
	"github.com/promgov/promgov/pkg/cluster"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/distributor"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

func main() {
	os.Exit(proc.ExitCode(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case cmdCheckConfig:
			return checkConfig(args[1:], stdout)
		case cmdTestRules:
			return testRules(args[1:], stdout)
		}
	}
	cfg, err := config.Parse(config.RoleDistributor, args, stderr)
	if errors.Is(err, config.ErrVersion) {
		return proc.PrintVersion(stdout, "distributor")
	}
	if err != nil {
		return err
	}
	logger := config.NewLogger(cfg.LogLevel, stderr).With("component", "distributor")
	proc.LogStart(logger)
	reg := proc.NewRegistry()

	// Governance rules: loaded now, reloaded with the usage section (below)
	// on SIGHUP and POST /-/reload; an invalid reload keeps the old config.
	rulesMgr := rules.NewManager(logger, reg)
	if err := rulesMgr.Reload(cfg.Rules); err != nil {
		return &config.UsageError{Err: err}
	}

	// Distributors join the ring as members that own nothing.
	rg, err := ring.New(cfg.Memberlist, ring.RoleDistributor, "", logger, reg)
	if err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	dist := distributor.New(cfg.Distributor, rg, logger, reg)
	dist.SetRules(rulesMgr, rules.NewTypeCache(cfg.Rules.TypeCacheSize))
	fanOut := cluster.NewFanOut(cfg.Cluster, rg, dist, logger, reg)

	// Usage intelligence: sources reloaded by usageMgr.Run; the query tap
	// and query logs record into outbox, which the shipper sends to each
	// metric's owning ingester; classification reads the statistics back
	// from every ingester and joins the cluster-wide cardinality costs. The
	// drop policy runs on the write path after the rules.
	rw := cfg.Distributor.RemoteWrite
	outbox := usage.NewAccessStats(cfg.Usage.Queries.MaxMetrics, cfg.Usage.Queries.MaxUsersPerMetric)
	shipper := cluster.NewAccessShipper(cfg.Usage.Queries.ShipInterval, cfg.Cluster.QueryTimeout, rg, dist, outbox, logger, reg)
	usageMgr, err := usage.NewManager(cfg.Usage, usage.Deps{
		Sources:    usage.SourcesFromConfig(cfg.Usage, outbox, rw.DefaultTenant),
		Access:     &clusterAccess{fanOut: fanOut, outbox: outbox},
		AccessName: "ingesters",
		Costs:      &clusterCosts{src: fanOut, timeout: cfg.Usage.LoadTimeout, logger: logger},
		Logger:     logger.With("component", "usage"),
		Registerer: reg,
	})
	if err != nil {
		return &config.UsageError{Err: err}
	}
	// Always consulted: with mode off it selects nothing, and a reload can
	// turn it on.
	dist.SetDropPolicy(usageMgr.Policy())
	reload := func() error { return reloadConfig(args, rulesMgr, usageMgr, outbox) }

	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/write", dist)
	mux.Handle("POST /-/reload", rules.ReloadHandler(reload))
	mux.Handle("PUT /-/reload", rules.ReloadHandler(reload))
	if err := mountAPI(mux, cfg, apiDeps{rules: rulesMgr, cardinality: fanOut, usage: usageMgr, outbox: outbox}, logger, reg); err != nil {
		return &config.UsageError{Err: err}
	}
	rg.RegisterRoutes(mux)
	webSrv, err := web.New(cfg.Web, mux, reg, dist.Ready, logger)
	if err != nil {
		return err
	}

	// Registered before the group runs so that an early SIGHUP is not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Stop order (each interrupt waits for its actor):
	//  1. signals;
	//  2. the SIGHUP reload loop;
	//  3. HTTP: stop accepting writes and queries and finish in-flight ones,
	//     which still push to ingesters;
	//  4. query statistics shipper: send what the tap recorded last;
	//  5. usage manager: stop reloading sources (the shipper and the
	//     manager's fan-outs use the distributor's ingester connections, so
	//     they stop before them);
	//  6. distributor: close the ingester connections;
	//  7. ring: leave the memberlist cluster.
	var g okrun.Group
	g.Add(okrun.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	proc.AddActor(&g, func(ctx context.Context) error { return reloadOnSignal(ctx, hup, reload, logger) })
	proc.AddActor(&g, webSrv.Run)
	proc.AddActor(&g, shipper.Run)
	proc.AddActor(&g, usageMgr.Run)
	proc.AddActor(&g, dist.Run)
	proc.AddActor(&g, rg.Run)
	return proc.RunGroup(&g, logger)
}

// reloadConfig re-reads the configuration exactly as at startup (the
// file, then the flags given) and applies its rules and usage sections. A
// file that does not parse or validate changes nothing; the rules manager
// logs the outcome and sets promgov_config_last_reload_successful.
func reloadConfig(args []string, rulesMgr *rules.Manager, usageMgr *usage.Manager, outbox *usage.AccessStats) error {
	var cfg *config.Config
	err := rulesMgr.ReloadFrom(func() (rules.Config, error) {
		var err error
		cfg, err = config.Parse(config.RoleDistributor, args, io.Discard)
		if err != nil {
			var ue *config.UsageError
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return rules.Config{}, err
		}
		if cfg.File == "" {
			return rules.Config{}, errors.New("no --config.file was given: there is nothing to reload")
		}
		return cfg.Rules, nil
	})
	if err != nil {
		return err
	}
	return usageMgr.ApplyConfig(cfg.Usage, usage.SourcesFromConfig(cfg.Usage, outbox, cfg.Distributor.RemoteWrite.DefaultTenant))
}

// reloadOnSignal calls reload on every signal from hup until ctx ends. The
// outcome is logged by the rules manager and counted in
// promgov_config_last_reload_successful.
func reloadOnSignal(ctx context.Context, hup <-chan os.Signal, reload func() error, logger *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			logger.Info("SIGHUP: reloading configuration")
			_ = reload() // logged and counted by the rules manager; the old config stays on error.
		}
	}
}
