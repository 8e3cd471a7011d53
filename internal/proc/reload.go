package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/pkg/config"
)

// Reloader re-reads a binary's configuration and applies what can change
// without a restart, on SIGHUP (Run) and on POST or PUT /-/reload
// (Handler). Reloads are serialised. The outcome is logged and exported as
// promgov_config_last_reload_successful and
// promgov_config_last_reload_success_timestamp_seconds, as Prometheus does.
type Reloader struct {
	apply  func() error
	logger *slog.Logger
	hup    chan os.Signal
	now    func() time.Time

	mu            sync.Mutex // serialises reloads
	lastSuccess   prometheus.Gauge
	lastSuccessTS prometheus.Gauge
}

// NewReloader returns a Reloader that calls apply on every reload; apply
// re-reads the configuration and returns an error when it is invalid (and
// then must leave the running configuration as it was). The start counts
// as a successful load. SIGHUP is caught from now on, so that one arriving
// before Run is not fatal; Run releases it. reg may be nil.
func NewReloader(apply func() error, logger *slog.Logger, reg prometheus.Registerer) *Reloader {
	r := &Reloader{
		apply:  apply,
		logger: logger,
		hup:    make(chan os.Signal, 1),
		now:    time.Now,
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded (1) or failed (0).",
		}),
		lastSuccessTS: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration reload (or of the start).",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.lastSuccess, r.lastSuccessTS)
	}
	r.lastSuccess.Set(1)
	r.lastSuccessTS.Set(float64(r.now().UnixNano()) / 1e9)
	signal.Notify(r.hup, syscall.SIGHUP)
	return r
}

// Reload applies the configuration now. On error the running
// configuration stays and the error is returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.apply(); err != nil {
		r.lastSuccess.Set(0)
		r.logger.Error("configuration reload failed; the running configuration stays", "err", err)
		return err
	}
	r.lastSuccess.Set(1)
	r.lastSuccessTS.Set(float64(r.now().UnixNano()) / 1e9)
	r.logger.Info("configuration reloaded")
	return nil
}

// Run reloads on every SIGHUP until ctx ends.
func (r *Reloader) Run(ctx context.Context) error {
	defer r.stopSignals()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hup:
			r.logger.Info("SIGHUP: reloading the configuration")
			_ = r.Reload() // logged and exported
		}
	}
}

// stopSignals stops catching SIGHUP.
func (r *Reloader) stopSignals() { signal.Stop(r.hup) }

// Handler serves POST and PUT /-/reload: 200 when the configuration was
// reloaded, 400 with the reason when it is invalid.
func (r *Reloader) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost && req.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		if err := r.Reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "config reloaded\n")
	})
}

// ReloadConfig is a binary's reload: it re-reads the configuration exactly
// as at the start with parse (the file, then the flags of the binary's
// arguments), hands it to apply for the parts the binary changes at run
// time, then sets the log level and logs, once per field, every change
// that needs a restart (config.RestartFields against started, the
// configuration the process started with). A file that does not parse or
// validate, or an apply error, changes nothing that apply did not.
func ReloadConfig[C config.Binary](parse func() (C, error), started C, level *slog.LevelVar, logger *slog.Logger,
	apply func(next C) error) error {
	next, err := parse()
	if err != nil {
		return config.UnwrapUsage(err)
	}
	if next.Base().File == "" {
		return errors.New("no --config.file was given: there is nothing to reload")
	}
	if err := apply(next); err != nil {
		return err
	}
	l, err := config.ParseLevel(next.Base().LogLevel)
	if err != nil {
		return fmt.Errorf("log_level: %w", err) // unreachable: Parse validated it
	}
	level.Set(l)
	for _, f := range config.RestartFields(started, next) {
		logger.Warn("configuration change needs restart; the running value stays until then", "field", f)
	}
	return nil
}
