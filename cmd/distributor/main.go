// Command distributor is promgov's stateless front door: it receives remote
// write, validates it and pushes every series to the ingester that owns it.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"

	okrun "github.com/oklog/run"

	"github.com/promgov/promgov/internal/proc"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/distributor"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/web"
)

func main() {
	os.Exit(proc.ExitCode(run(context.Background(), os.Args[1:], os.Stderr), os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := config.Parse(config.RoleDistributor, args, stderr)
	if err != nil {
		return err
	}
	logger := config.NewLogger(cfg.LogLevel, stderr).With("component", "distributor")
	reg := proc.NewRegistry()

	// Distributors join the ring as members that own nothing.
	rg, err := ring.New(cfg.Memberlist, ring.RoleDistributor, "", logger, reg)
	if err != nil {
		return fmt.Errorf("ring: %w", err)
	}
	dist := distributor.New(cfg.Distributor, rg, logger, reg)

	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/write", dist)
	rg.RegisterRoutes(mux)
	webSrv, err := web.New(cfg.Web, mux, reg, dist.Ready, logger)
	if err != nil {
		return err
	}

	// Stop order (each interrupt waits for its actor):
	//  1. signals;
	//  2. HTTP: stop accepting writes and finish in-flight ones, which still
	//     push to ingesters;
	//  3. distributor: close the ingester connections;
	//  4. ring: leave the memberlist cluster.
	var g okrun.Group
	g.Add(okrun.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	proc.AddActor(&g, webSrv.Run)
	proc.AddActor(&g, dist.Run)
	proc.AddActor(&g, rg.Run)
	return proc.RunGroup(&g, logger)
}
