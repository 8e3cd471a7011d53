// Command distributor is promgov's stateless front door: it receives remote
// write, applies the governance rules, validates it and pushes every series
// to the ingester that owns it.
//
// Besides serving, it has two CI subcommands (see docs/rules.md):
//
//	distributor check-config FILE...   validate configuration files for both binaries (rules included)
//	distributor test-rules FILE...     run YAML rule unit tests
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"

	okrun "github.com/oklog/run"

	"github.com/promgov/promgov/internal/proc"
	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cluster"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/config/distributorconfig"
	"github.com/promgov/promgov/pkg/distributor"
	"github.com/promgov/promgov/pkg/gctune"
	"github.com/promgov/promgov/pkg/govsync"
	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/ratelimit"
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
			return distributorconfig.CheckConfigCommand("distributor", args[1:], stdout)
		case cmdTestRules:
			return testRules(args[1:], stdout)
		}
	}
	cfg, err := distributorconfig.Parse(args, stderr)
	if errors.Is(err, config.ErrVersion) {
		return proc.PrintVersion(stdout, "distributor")
	}
	if err != nil {
		return err
	}
	logger, logLevel := config.NewLogger(&cfg.Common, stderr)
	logger = logger.With("component", "distributor")
	proc.LogStart(logger)
	reg := proc.NewRegistry()

	// Governance rules: loaded now, reloaded with the usage section and the
	// log level (below) on SIGHUP and POST /-/reload; an invalid reload
	// keeps the old config.
	rulesMgr := rules.NewManager(logger, reg)
	// The rules' WebAssembly plugins are released once the group below has
	// stopped, i.e. after the write path (stop order 9).
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rulesMgr.Close(cctx)
	}()
	// Distributors join the ring as members that own nothing.
	rg, err := ring.New(cfg.Memberlist, ring.RoleDistributor, "", logger, reg)
	if err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	grpcCreds, err := cfg.IngesterClient.DialOption()
	if err != nil {
		return &config.UsageError{Err: err}
	}
	// The connections to the ingesters, shared by the pushes and every
	// cluster call; the distributor is built last, with all it uses.
	clients := distributor.NewClients(cfg.Distributor, grpcCreds)
	fanOut := cluster.NewFanOut(cfg.Cluster, cluster.FanOutDeps{Members: rg, Clients: clients, Logger: logger, Registerer: reg})

	// Usage intelligence: sources reloaded by usageMgr.Run; the query tap
	// and query logs record into outbox, which the shipper sends to each
	// metric's owning ingester; classification reads the statistics back
	// from every ingester and joins the cluster-wide cardinality costs. The
	// drop policy runs on the write path after the rules.
	rw := cfg.Distributor.RemoteWrite
	outbox := usage.NewAccessStats(cfg.Usage.Queries.MaxMetrics, cfg.Usage.Queries.MaxUsersPerMetric)
	shipper := cluster.NewAccessShipper(cfg.Usage.Queries.ShipInterval, cfg.Cluster.QueryTimeout, cluster.AccessShipperDeps{
		Ring: rg, Clients: clients, Outbox: outbox, Logger: logger, Registerer: reg,
	})
	usageMgr, err := usage.NewManager(cfg.Usage, usage.Deps{
		Sources:    usage.SourcesFromConfig(cfg.Usage, outbox, rw.DefaultTenant),
		Access:     cluster.NewAccessSource(fanOut, outbox),
		AccessName: "ingesters",
		Costs:      cluster.NewCosts(fanOut, cfg.Usage.LoadTimeout, logger),
		Logger:     logger.With("component", "usage"),
		Registerer: reg,
	})
	if err != nil {
		return &config.UsageError{Err: err}
	}
	// The rules, with usage.drop_unused as their last rule (of kind
	// unused, answered by the usage analysis) when it is on.
	rulesMgr.SetUsagePolicy(usageMgr.Policy())
	if err := rulesMgr.Reload(withUsageDrop(cfg.Rules, cfg.Usage.DropUnused)); err != nil {
		return &config.UsageError{Err: err}
	}
	// A reload changes what rulesMgr, the drop policy and limiter apply,
	// never the distributor's dependencies. The drop policy is always
	// consulted: with mode off it selects nothing, and a reload can turn it
	// on.
	limiter := ratelimit.New(cfg.RateLimits, func() int { return healthyDistributors(rg) }, reg)
	dist := distributor.New(cfg.Distributor, distributor.Deps{
		Ring: rg, Pusher: clients,
		Rules: rulesMgr, Types: rules.NewTypeCache(cfg.Rules.TypeCacheSize),
		RateLimiter: limiter,
		Logger:      logger, Registerer: reg,
	})
	authMW, err := newAuth(cfg, logger, reg)
	if err != nil {
		return &config.UsageError{Err: err}
	}
	// Governance as code: with a store, the active version's rules and
	// drop policy replace the file's, on every node; what dist drops feeds
	// the automatic rollback (docs/governance.md).
	// The ingesters' aggregation rules, as the rules test API shows them
	// (the file's, or the active governance version's).
	aggRules := new(aggregate.Describer)
	setAggregations(aggRules, cfg.Aggregate.Rules, logger)
	gov, err := govsync.NewNode(&cfg.Common, config.RoleDistributor, rg, distributorGovernance(cfg, rulesMgr, usageMgr, aggRules, logger), dist, logger, reg)
	if err != nil {
		return fmt.Errorf("governance: %w", err)
	}
	reloader := proc.NewReloader(func() error {
		parse := func() (*distributorconfig.Config, error) { return distributorconfig.Parse(args, io.Discard) }
		return proc.ReloadConfig(parse, cfg, logLevel, logger, func(next *distributorconfig.Config) error {
			policy, err := auth.Load(next.Auth, next.Web.ConfigFile)
			if err != nil {
				return err
			}
			doc, err := gov.OnReload(&next.Common)
			if err != nil {
				return err
			}
			if doc != nil {
				next.Rules.Rules = doc.Rules
				next.Usage.DropUnused = doc.Usage.DropUnused
				if doc.Aggregations != nil {
					next.Aggregate.Rules = *doc.Aggregations
				}
			}
			if err := rulesMgr.Reload(withUsageDrop(next.Rules, next.Usage.DropUnused)); err != nil {
				return err
			}
			authMW.SetPolicy(policy)
			limiter.SetConfig(next.RateLimits)
			setAggregations(aggRules, next.Aggregate.Rules, logger)
			return usageMgr.ApplyConfig(next.Usage, usage.SourcesFromConfig(next.Usage, outbox, next.Distributor.RemoteWrite.DefaultTenant))
		})
	}, logger, reg)

	mux := http.NewServeMux()
	mux.Handle("POST "+distributor.WritePath, dist)
	distributor.MountWrongWritePaths(mux) // 404s naming the write path
	mux.Handle("POST /-/reload", reloader.Handler())
	mux.Handle("PUT /-/reload", reloader.Handler())
	if err := mountAPI(mux, cfg, apiDeps{rules: rulesMgr, aggregations: aggRules, cardinality: fanOut, aggregation: fanOut.Aggregation, preview: fanOut, dropUnused: usageMgr.Policy(), usage: usageMgr, outbox: outbox}, logger, reg); err != nil {
		return &config.UsageError{Err: err}
	}
	rg.RegisterRoutes(mux)
	uiHistory, err := mountUI(mux, cfg, uiDeps{ring: rg, clients: clients, cardinality: fanOut, usage: usageMgr, gatherer: reg,
		governance: gov != nil, auth: authMW}, logger)
	if err != nil {
		return err
	}
	gov.Register(mux)
	var autoPropose *preview.AutoProposer // nil: off
	if store := gov.Store(); store != nil {
		// Suggestions become shadow versions with their preview attached,
		// on request and, if configured, on an interval.
		pd := preview.ProposeDeps{Store: store, Usage: usageMgr, Cluster: fanOut, Rules: rulesMgr,
			DropUnused: usageMgr.Policy(), Timeout: 2*cfg.Governance.Timeout + cfg.Cluster.QueryTimeout, Logger: logger, Notify: gov.Notify}
		mux.Handle("POST "+preview.PathPropose, preview.ProposeHandler(pd))
		autoPropose = preview.NewAutoProposer(cfg.Governance.AutoPropose, preview.NewProposer(pd), logger.With("component", "auto-propose"), reg)
	}
	jobs, err := newRetro(cfg, rulesMgr, logger, reg)
	if err != nil {
		return &config.UsageError{Err: err}
	}
	jobs.Register(mux)
	webSrv, err := web.New(cfg.Web, mux, reg, dist.Ready, logger)
	if err != nil {
		return err
	}
	webSrv.Use(authMW.Wrap)

	// Stop order (each interrupt waits for its actor):
	//  1. signals;
	//  2. the SIGHUP reload loop, then the auto-proposer (it writes to
	//     the store), then the governance node (closes the store);
	//  3. HTTP: stop accepting writes and queries and finish in-flight ones,
	//     which still push to ingesters;
	//  4. query statistics shipper: send what the tap recorded last;
	//  5. usage manager: stop reloading sources (the shipper and the
	//     manager's fan-outs use the distributor's ingester connections, so
	//     they stop before them);
	//  6. ingester connections: closed (Run also closes those to
	//     ingesters that left the ring while it runs);
	//  7. ring: leave the memberlist cluster;
	//  8. the GC tuner: the memory limit it set is restored;
	//  9. (deferred above) the rules' plugins are closed.
	var g okrun.Group
	g.Add(okrun.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	proc.AddActor(&g, reloader.Run)
	proc.AddActor(&g, autoPropose.Run)
	proc.AddActor(&g, gov.Run)
	proc.AddActor(&g, webSrv.Run)
	proc.AddActor(&g, jobs.Run)
	proc.AddActor(&g, shipper.Run)
	proc.AddActor(&g, usageMgr.Run)
	if uiHistory != nil {
		proc.AddActor(&g, uiHistory.Run)
	}
	proc.AddActor(&g, func(ctx context.Context) error { return clients.Run(ctx, rg) })
	proc.AddActor(&g, rg.Run)
	proc.AddActor(&g, gctune.New(cfg.GC, logger).Run)
	return proc.RunGroup(&g, logger)
}
