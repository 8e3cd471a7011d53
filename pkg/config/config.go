// Package config is the one YAML file both promgov binaries share and the
// Prometheus-style flags that override it. Precedence, lowest first: the
// packages' defaults, the --config.file YAML, the flags given.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/internal/cli"
	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/cluster"
	"github.com/promgov/promgov/pkg/clustertls"
	"github.com/promgov/promgov/pkg/distributor"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/ratelimit"
	"github.com/promgov/promgov/pkg/reservoir"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/ui"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/wal"
	"github.com/promgov/promgov/pkg/web"
)

// Role selects which sections and flags a binary uses.
type Role string

// The binaries.
const (
	RoleDistributor Role = "distributor"
	RoleIngester    Role = "ingester"
)

// Config is the whole configuration file. Each binary reads the sections it
// needs and ignores the others, so one file serves the cluster.
type Config struct {
	LogLevel string `yaml:"log_level"`
	// LogFormat is logfmt (the default, as Prometheus) or json.
	LogFormat string     `yaml:"log_format"`
	Web       web.Config `yaml:"web"`
	// Auth is who may write, read and administer (docs/security.md).
	Auth auth.Config `yaml:"auth"`
	// IngesterClient is the TLS of gRPC connections to ingesters
	// (distributors and ingesters both dial them).
	IngesterClient clustertls.ClientConfig `yaml:"ingester_client"`
	// RateLimits is the distributors' per-tenant ingestion rate limits.
	RateLimits  ratelimit.Config      `yaml:"rate_limits"`
	Memberlist  ring.Config           `yaml:"memberlist"`
	Distributor distributor.Config    `yaml:"distributor"`
	Ingester    ingester.Config       `yaml:"ingester"`
	Backend     forward.BackendConfig `yaml:"backend"`
	// Backends lists several backends, each forwarded to independently
	// (see forward.Backends); then backend: and --backend.url stay unset.
	Backends []forward.BackendConfig `yaml:"backends"`
	Forward  forward.Config          `yaml:"forward"`
	WAL      wal.Config              `yaml:"wal"`
	// Cardinality is the ingesters' cardinality tracking and its `limits:`
	// (see docs/cardinality.md).
	Cardinality cardinality.Config `yaml:"cardinality"`
	// Cluster configures peer sketch sync and ring-change handoff
	// (ingesters) and the analytics API fan-out (distributors).
	Cluster cluster.Config `yaml:"cluster"`
	// Rules is the distributor's governance rules section: the top-level
	// `rules:` list and `rules_*` settings (see docs/rules.md).
	Rules rules.Config `yaml:",inline"`
	// Aggregate is the ingesters' aggregation rules: the top-level
	// `aggregations:` list, next to `rules:` (see docs/aggregation.md).
	Aggregate aggregate.Config `yaml:",inline"`
	// Usage is the distributor's usage intelligence: sources, the query tap
	// (--query.backend-url) and the drop_unused policy (see docs/usage.md).
	Usage usage.Config `yaml:"usage"`
	// UI is the built-in web UI (both roles).
	UI ui.Config `yaml:"ui"`
	// Governance is the versioned governance store (docs/governance.md):
	// when set, rules, cardinality.limits and usage.drop_unused come from
	// its active version and the file only seeds it.
	Governance govstore.Config `yaml:"governance"`
	// PreviewReservoir is the ingesters' sample of recently seen series
	// per owned metric, the input of the impact preview
	// (docs/governance.md, "Impact preview").
	PreviewReservoir reservoir.Config `yaml:"preview_reservoir"`
	// Retrospective is where retrospective jobs run (distributors,
	// docs/retrospective.md).
	Retrospective retro.Config `yaml:"retrospective"`
	// File is the --config.file path ("" when none), for reloads.
	File string `yaml:"-"`
}

// The default addresses: every interface, like Prometheus, and a port of
// each binary's own so that a distributor and an ingester can share a host
// (README, "Ports").
const (
	DistributorListenAddress = ":9500"
	DistributorGossipAddress = ":7946"
	IngesterListenAddress    = ":9501"
	IngesterGossipAddress    = ":7947"
	// The ingester's gRPC address, :9095, is the ingester package's default.
)

// The log formats.
const (
	LogFormatLogfmt = "logfmt"
	LogFormatJSON   = "json"
)

// ErrVersion is what Parse returns when --version was given: the binary
// prints its version information (internal/proc.PrintVersion) and exits 0.
var ErrVersion = errors.New("--version was given")

// UsageError is a bad flag or configuration: the binary exits with code 2
// (internal/cli).
type UsageError = cli.UsageError

// Parse builds the configuration of a binary from its arguments. It returns
// flag.ErrHelp (wrapped in nothing) when -h was asked for, and ErrVersion
// when --version was.
func Parse(role Role, args []string, stderr io.Writer) (*Config, error) {
	cfg := &Config{}
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	fs.SetOutput(stderr)
	var file string
	fs.StringVar(&file, "config.file", "", "YAML configuration file shared by distributors and ingesters; flags given on the command line override it.")
	fs.StringVar(&cfg.LogLevel, "log.level", "info", "Log level: debug, info, warn or error.")
	fs.StringVar(&cfg.LogFormat, "log.format", LogFormatLogfmt, "Log format: logfmt or json.")
	cfg.Web.ListenAddress, cfg.Memberlist.BindAddress = DistributorListenAddress, DistributorGossipAddress
	if role == RoleIngester {
		cfg.Web.ListenAddress, cfg.Memberlist.BindAddress = IngesterListenAddress, IngesterGossipAddress
	}

	showVersion := fs.Bool("version", false, "Print version information (version, revision, branch, build date, Go version) and exit.")
	cfg.Web.RegisterFlags("web.", fs)
	cfg.Auth.RegisterFlags("auth.", fs)
	cfg.IngesterClient.RegisterFlags("ingester.client.", fs)
	cfg.Memberlist.RegisterFlags("memberlist.", fs)
	cfg.Cluster.RegisterFlags("cluster.", fs)
	cfg.UI.RegisterFlags("ui.", fs)
	cfg.Governance.RegisterFlags("governance.", fs)
	switch role {
	case RoleDistributor:
		cfg.Distributor = distributor.DefaultConfig()
		cfg.Distributor.RegisterFlags(distributor.FlagPrefix, fs)
		cfg.RateLimits.RegisterFlags("rate-limit.", fs)
		cfg.Rules = rules.DefaultConfig()
		cfg.Rules.RegisterFlags("", fs)
		cfg.Retrospective.RegisterFlags("retrospective.", fs)
		cfg.Usage = usage.DefaultConfig()
		cfg.Usage.RegisterFlags("", fs)
	case RoleIngester:
		cfg.Ingester = ingester.DefaultConfig()
		cfg.Ingester.RegisterFlags("grpc.", fs)
		cfg.Ingester.RegisterInstanceFlags("ingester.", fs)
		cfg.Backend.RegisterFlags("backend.", fs)
		cfg.Forward.RegisterFlags("forward.", fs)
		cfg.WAL.RegisterFlags("wal.", fs)
		cfg.Cardinality.RegisterFlags("cardinality.", fs)
		cfg.Aggregate.RegisterFlags("aggregations.", fs)
		cfg.PreviewReservoir.RegisterFlags("preview.reservoir.", fs)
		cfg.Usage = usage.DefaultConfig()
		cfg.Usage.RegisterIngesterFlags("", fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of promgov %s:\n", role)
		if role == RoleIngester {
			fmt.Fprintln(stderr, "\nDURABILITY: a push is acknowledged only after it is in the write-ahead log (--wal.dir).")
			fmt.Fprintln(stderr, "--wal.sync-policy: \"always\" and \"group\" (default) fsync before acknowledging, so nothing")
			fmt.Fprintln(stderr, "acknowledged is lost even on power loss; \"interval\" acknowledges after the write and fsyncs")
			fmt.Fprintln(stderr, "every --wal.sync-interval: a killed process loses nothing, a kernel crash or power loss")
			fmt.Fprintln(stderr, "can lose up to that interval of acknowledged data. See docs/wal.md.")
		}
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &UsageError{Err: err}
	}
	if *showVersion {
		return nil, ErrVersion
	}
	if fs.NArg() > 0 {
		return nil, &UsageError{Err: fmt.Errorf("unexpected arguments %q; every option is a --flag", fs.Args())}
	}
	cfg.File = file
	if file != "" {
		if err := loadFile(file, cfg); err != nil {
			return nil, &UsageError{Err: err}
		}
		// Files named in a backend's HTTP settings (password_file, ca_file,
		// ...) are relative to the configuration file.
		dir := filepath.Dir(file)
		cfg.Backend.HTTP.SetDirectory(dir)
		for i := range cfg.Backends {
			cfg.Backends[i].HTTP.SetDirectory(dir)
		}
		// Flags given on the command line win over the file.
		if err := fs.Parse(args); err != nil {
			return nil, &UsageError{Err: err}
		}
	}
	if err := cfg.Validate(role); err != nil {
		return nil, &UsageError{Err: fmt.Errorf("invalid configuration: %w", err)}
	}
	if role == RoleIngester {
		cfg.defaultIngesterPaths()
	}
	return cfg, nil
}

// defaultIngesterPaths puts the cardinality and query statistics snapshots
// next to the WAL unless the configuration names their files.
func (c *Config) defaultIngesterPaths() {
	if c.Cardinality.SnapshotPath == "" {
		c.Cardinality.SnapshotPath = filepath.Join(c.WAL.Dir, "cardinality.snapshot")
	}
	if c.Aggregate.SnapshotPath == "" {
		c.Aggregate.SnapshotPath = filepath.Join(c.WAL.Dir, "aggregation.snapshot")
	}
	if c.Usage.Queries.SnapshotPath == "" {
		c.Usage.Queries.SnapshotPath = filepath.Join(c.WAL.Dir, "access.snapshot")
	}
}

func loadFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read --config.file: %w", err)
	}
	return Unmarshal(b, cfg)
}

// Unmarshal decodes YAML onto cfg, refusing unknown fields so that a typo is
// an error rather than a silently ignored setting.
func Unmarshal(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse configuration file: %w", err)
	}
	return nil
}

// Validate checks the sections role uses.
func (c *Config) Validate(role Role) error {
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != LogFormatLogfmt && c.LogFormat != LogFormatJSON {
		return fmt.Errorf("log_format %q: use %s or %s", c.LogFormat, LogFormatLogfmt, LogFormatJSON)
	}
	if err := c.Web.Validate(); err != nil {
		return err
	}
	if err := c.Auth.Validate(); err != nil {
		return err
	}
	// The identities file is checked whole, so check-config catches it.
	if _, err := auth.Load(c.Auth, c.Web.ConfigFile); err != nil {
		return err
	}
	if err := c.IngesterClient.Validate(); err != nil {
		return err
	}
	if err := c.Memberlist.Validate(); err != nil {
		return err
	}
	if err := c.Cluster.Validate(); err != nil {
		return fmt.Errorf("cluster.%w", err)
	}
	if err := c.UI.Validate(); err != nil {
		return err
	}
	if err := c.Governance.Validate(); err != nil {
		return err
	}
	switch role {
	case RoleDistributor:
		if err := c.Distributor.Validate(); err != nil {
			return err
		}
		if err := c.RateLimits.Validate(); err != nil {
			return err
		}
		if err := c.Retrospective.Validate(); err != nil {
			return err
		}
		if err := c.Rules.Validate(); err != nil {
			return err
		}
		return c.Usage.Validate()
	case RoleIngester:
		if err := c.Ingester.Validate(); err != nil {
			return err
		}
		if _, err := forward.ResolveBackends(c.Backend, c.Backends); err != nil {
			return err
		}
		if err := c.WAL.Validate(); err != nil {
			return err
		}
		if err := c.Cardinality.Validate(); err != nil {
			return fmt.Errorf("cardinality.%w", err)
		}
		if err := c.Aggregate.Validate(); err != nil {
			return err
		}
		if err := c.PreviewReservoir.Validate(); err != nil {
			return fmt.Errorf("preview_reservoir.%w", err)
		}
		if err := c.Usage.Validate(); err != nil {
			return err
		}
		return c.Forward.Validate()
	}
	return fmt.Errorf("unknown role %q", role)
}

// ParseLevel parses --log.level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("log_level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds the process logger on w in c's log format, and the level
// a configuration reload may change.
func NewLogger(c *Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	l, _ := ParseLevel(c.LogLevel) // checked by Validate
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}
