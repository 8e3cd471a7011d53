// Package proc holds the few lines the distributor's and the ingester's
// mains share: the registry with process collectors, version output, the
// actor group and the configuration reloader. The exit-code convention is
// internal/cli's (ExitCode applies it).
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	okrun "github.com/oklog/run"
	"github.com/promgov/promgov/internal/cli"
	// The Mozilla roots, used only when the system has no CA bundle (the
	// scratch-based image has none), so TLS to a backend is verified.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
)

// NewRegistry returns a registry with the Go and process collectors and
// promgov_build_info (version, revision, branch, Go version as labels).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("promgov"))
	return reg
}

// PrintVersion prints program's version information as Prometheus does
// (version, revision, branch, build user and date, Go version, platform).
// `make build` sets them with -ldflags (see the Makefile).
func PrintVersion(w io.Writer, program string) error {
	_, err := fmt.Fprintln(w, version.Print(program))
	return err
}

// LogStart logs the version and build context a binary starts with, and
// the runtime settings it runs with: the GODEBUG default it was linked
// with (the Makefile's GODEBUG_DEFAULT) and the GODEBUG environment
// variable, which overrides it.
func LogStart(logger *slog.Logger) {
	logger.Info("starting", "version", version.Info(), "build_context", version.BuildContext(),
		"godebug_default", godebugDefault, "godebug", os.Getenv("GODEBUG"))
}

// ExitCode prints err and returns the process exit code: 0 for nil or -h,
// 2 for bad flags or configuration, 1 otherwise.
func ExitCode(err error, stderr io.Writer) int {
	return cli.ExitCode("error", err, stderr)
}

// AddActor adds a Run(ctx) component to g. Its interrupt cancels the
// component's context and waits until Run has returned, so the actors of a
// group stop one after another in the order they were added.
func AddActor(g *okrun.Group, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.Add(func() error {
		defer close(done)
		return fn(ctx)
	}, func(error) {
		cancel()
		<-done
	})
}

// RunGroup runs g and treats a stop by signal as a clean exit.
func RunGroup(g *okrun.Group, logger *slog.Logger) error {
	err := g.Run()
	var sig *okrun.SignalError
	if errors.As(err, &sig) {
		logger.Info("shut down cleanly", "signal", sig.Signal.String())
		return nil
	}
	return err
}
