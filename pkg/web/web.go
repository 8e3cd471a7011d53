// Package web serves the HTTP endpoints every promgov binary has: /metrics,
// the /-/healthy and /-/ready probes, and whatever API routes the binary
// mounts on the shared mux. It also holds what the binaries' APIs share:
// the Prometheus API envelope every handler answers in (Envelope,
// WriteJSON, WriteError), the /promgov/api/v1 prefix of promgov's own APIs,
// the redirects from their legacy /api/v1 paths, and the read APIs' tenant
// (RequestTenant).
package web

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	toolkitweb "github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/net/netutil"

	"github.com/promgov/promgov/internal/recovery"
)

// Config configures the HTTP server.
type Config struct {
	// ListenAddress is the host:port the HTTP server binds.
	ListenAddress string `yaml:"listen_address"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// when the server stops.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// EnablePprof serves the Go runtime profiles under /debug/pprof/ (on by
	// default, as in Prometheus), so a running cluster can be profiled.
	EnablePprof bool `yaml:"enable_pprof"`
	// ConfigFile is the exporter-toolkit web configuration (TLS, client
	// certificates, basic auth with bcrypt hashes, response headers); empty
	// serves plain HTTP without authentication (docs/security.md).
	ConfigFile string `yaml:"config_file"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout bounds how long a keep-alive connection may sit idle.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections caps the open connections; further clients wait in
	// the kernel's accept queue until one closes. 0 means no cap.
	MaxConnections int `yaml:"max_connections"`
}

// DefaultListenAddress is the listen address when the binary sets none:
// every interface, like Prometheus (the distributor's; ingesters use :9501).
const DefaultListenAddress = ":9500"

// RegisterFlags registers the flags under prefix (the binaries use "web.").
// The listen address defaults to c.ListenAddress when the binary set one
// before (each binary has its own port), else to DefaultListenAddress.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	def := c.ListenAddress
	if def == "" {
		def = DefaultListenAddress
	}
	fs.StringVar(&c.ListenAddress, prefix+"listen-address", def, "Address to listen on for the HTTP API, /metrics and probes (host:port; an empty host is every interface).")
	fs.DurationVar(&c.ShutdownTimeout, prefix+"shutdown-timeout", 10*time.Second, "How long in-flight HTTP requests may take to finish on shutdown.")
	fs.DurationVar(&c.ReadHeaderTimeout, prefix+"read-header-timeout", 10*time.Second, "How long a client may take to send request headers.")
	fs.BoolVar(&c.EnablePprof, prefix+"enable-pprof", true, "Serve Go runtime profiles under /debug/pprof/ (CPU, heap, goroutines); --web.enable-pprof=false turns them off.")
	fs.StringVar(&c.ConfigFile, prefix+"config.file", "", "exporter-toolkit web configuration file: TLS, client certificates, basic auth (bcrypt), response headers (docs/security.md). Empty: plain HTTP, no authentication.")
	fs.DurationVar(&c.ReadTimeout, prefix+"read-timeout", time.Minute, "How long a client may take to send a whole request, body included.")
	fs.DurationVar(&c.IdleTimeout, prefix+"idle-timeout", 2*time.Minute, "How long a keep-alive connection may stay idle before it is closed.")
	fs.IntVar(&c.MaxHeaderBytes, prefix+"max-header-bytes", 64<<10, "Largest request line and headers a client may send, in bytes.")
	fs.IntVar(&c.MaxConnections, prefix+"max-connections", 1024, "Most simultaneous open HTTP connections; more clients wait until one closes (0: no cap).")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if c.ListenAddress == "" {
		return errors.New("web.listen_address: must not be empty; set it to a host:port such as 0.0.0.0:9500")
	}
	if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
		return fmt.Errorf("web.listen_address %q: %w; use host:port", c.ListenAddress, err)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("web.shutdown_timeout: must be positive")
	}
	if c.ReadTimeout < 0 || c.IdleTimeout < 0 || c.ReadHeaderTimeout < 0 {
		return errors.New("web.read_timeout, web.idle_timeout, web.read_header_timeout: must not be negative (0: no timeout)")
	}
	if c.MaxHeaderBytes < 0 {
		return errors.New("web.max_header_bytes: must not be negative (0: Go's default of 1 MiB)")
	}
	if c.MaxConnections < 0 {
		return errors.New("web.max_connections: must not be negative (0: no cap)")
	}
	if c.ConfigFile != "" {
		if err := toolkitweb.Validate(c.ConfigFile); err != nil {
			return fmt.Errorf("web.config_file %s: %w; see docs/security.md for the format", c.ConfigFile, err)
		}
	}
	return nil
}

// ReadyFunc reports nil when the process is ready to serve, or why not.
// It is called concurrently from probe requests.
type ReadyFunc func() error

// Server is the HTTP server of a promgov binary. It binds in New, so the
// address is known (and a port conflict reported) before Run.
type Server struct {
	cfg     Config
	srv     *http.Server
	ln      net.Listener
	logger  *slog.Logger
	handler http.Handler // the mux, wrapped by Use
	recover *recovery.Handler
}

// Registry is where the server exposes /metrics from and counts its own
// metrics into; *prometheus.Registry is one.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// New binds the listener and builds the server. mux carries the binary's
// routes; New adds /metrics, /-/healthy, /-/ready and, with EnablePprof,
// /debug/pprof/ to it, and answers a
// request whose handler panics with 500 (internal/recovery) instead of
// letting it kill the process.
func New(cfg Config, mux *http.ServeMux, reg Registry, ready ReadyFunc, logger *slog.Logger) (*Server, error) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintln(w, "Healthy.")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "Not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintln(w, "Ready.")
	})
	if cfg.EnablePprof {
		mountPprof(mux)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("listen on web.listen_address %s: %w", cfg.ListenAddress, err)
	}
	if cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	rec := recovery.New(logger, reg)
	return &Server{
		cfg:     cfg,
		ln:      ln,
		logger:  logger,
		handler: mux,
		recover: rec,
		srv: &http.Server{
			Handler:           rec.HTTP(mux),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// mountPprof serves net/http/pprof's handlers on mux (not on
// http.DefaultServeMux, which nothing in promgov serves).
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Use puts mw in front of every route (inside the panic recovery), e.g. the
// authentication middleware (pkg/auth). Call it before Run.
func (s *Server) Use(mw func(http.Handler) http.Handler) {
	s.handler = mw(s.handler)
	s.srv.Handler = s.recover.HTTP(s.handler)
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is cancelled, then shuts down gracefully within the
// configured timeout.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if s.cfg.ConfigFile == "" {
			errc <- s.srv.Serve(s.ln)
			return
		}
		errc <- s.serveWebConfig()
	}()
	s.logger.Info("HTTP server listening", "address", s.Addr(), "web_config_file", s.cfg.ConfigFile)
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP on %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down HTTP server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
