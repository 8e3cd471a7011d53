// Command loadgen sends a deterministic Remote Write 1.0/2.0 workload to a
// promgov distributor (or any Remote Write receiver) and prints a report.
//
// Example:
//
//	loadgen -url=http://127.0.0.1:9090/api/v1/write -protocol=2.0 -rate=10000 -duration=30s -output=json
//
// Exit status: 0 after a completed run (failed requests are in the report),
// 2 on bad flags, 1 on other errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/common/version"
	_ "golang.org/x/crypto/x509roots/fallback" // TLS roots when the system has none (the image)

	"github.com/promgov/promgov/internal/cli"
	"github.com/promgov/promgov/pkg/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.ExitCode("loadgen", err, os.Stderr))
}

// run parses args, runs the load generator until it finishes or ctx is
// cancelled and writes the final report to stdout. Progress and usage go to stderr.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var cfg loadgen.Config
	cfg.RegisterFlags("", fs)
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "Log level: debug, info, warn, error.")
	showVersion := fs.Bool("version", false, "Print version information and exit.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return cli.Usage(err)
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, version.Print("loadgen"))
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := cfg.Validate(); err != nil {
		return cli.Usage(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	report, err := loadgen.Run(ctx, cfg, logger)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return report.Write(stdout, cfg.Output)
}
