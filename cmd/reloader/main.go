// Command reloader is the sidecar that makes a promgov process apply a
// changed configuration file without a restart: it polls the file (a
// mounted ConfigMap) and POSTs to the process's /-/reload. See
// pkg/reloader and docs/deploy.md.
//
//	reloader --file=/etc/promgov/promgov.yml --url=http://127.0.0.1:9500/-/reload
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/common/version"

	"github.com/promgov/promgov/internal/cli"
	"github.com/promgov/promgov/pkg/reloader"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	// internal/cli, not pkg/config: the reloader stays small.
	os.Exit(cli.ExitCode("error", err, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reloader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg reloader.Config
	cfg.RegisterFlags("", fs)
	level := fs.String("log.level", "info", "Log level: debug, info, warn or error.")
	showVersion := fs.Bool("version", false, "Print version information and exit.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return cli.Usage(err)
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Print("reloader"))
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usage(fmt.Errorf("unexpected arguments %q; every option is a --flag", fs.Args()))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(*level))); err != nil {
		return cli.Usage(fmt.Errorf("log.level %q: use debug, info, warn or error", *level))
	}
	if err := cfg.Validate(); err != nil {
		return cli.Usage(err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", "reloader")
	logger.Info("starting", "version", version.Info(), "files", cfg.Files, "urls", cfg.URLs, "interval", cfg.Interval)
	return reloader.New(cfg, &http.Client{}, logger).Run(ctx)
}
