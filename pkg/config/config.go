// Package config is the one YAML file both promgov binaries share and the
// Prometheus-style flags that override it. Precedence, lowest first: the
// packages' defaults, the --config.file YAML, the flags given.
//
// Each binary has its own configuration type, Common plus the sections it
// runs: IngesterConfig here, the distributor's in
// pkg/config/distributorconfig, so that the ingester links none of the
// distributor's packages (rules, rate limits, the distributor itself).
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/internal/cli"
	"github.com/promgov/promgov/pkg/auth"
	"github.com/promgov/promgov/pkg/cluster"
	"github.com/promgov/promgov/pkg/clustertls"
	"github.com/promgov/promgov/pkg/gctune"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/ui"
	"github.com/promgov/promgov/pkg/web"
)

// Role names a binary: the sections and flags it uses.
type Role string

// The binaries.
const (
	RoleDistributor Role = "distributor"
	RoleIngester    Role = "ingester"
)

// Common are the sections of the configuration file both binaries read.
// Each binary's configuration embeds it next to its own sections
// (IngesterConfig here, the distributor's in pkg/config/distributorconfig),
// so a binary links only the packages of the sections it runs.
type Common struct {
	LogLevel string `yaml:"log_level"`
	// LogFormat is logfmt (the default, as Prometheus) or json.
	LogFormat string     `yaml:"log_format"`
	Web       web.Config `yaml:"web"`
	// Auth is who may write, read and administer (docs/security.md).
	Auth auth.Config `yaml:"auth"`
	// IngesterClient is the TLS of gRPC connections to ingesters
	// (distributors and ingesters both dial them).
	IngesterClient clustertls.ClientConfig `yaml:"ingester_client"`
	Memberlist     ring.Config             `yaml:"memberlist"`
	// Cluster configures peer sketch sync and ring-change handoff
	// (ingesters) and the analytics API fan-out (distributors).
	Cluster cluster.Config `yaml:"cluster"`
	// UI is the built-in web UI (both roles).
	UI ui.Config `yaml:"ui"`
	// Governance is the versioned governance store (docs/governance.md):
	// when set, rules, cardinality.limits and usage.drop_unused come from
	// its active version and the file only seeds it.
	Governance govstore.Config `yaml:"governance"`
	// GC bounds the heap's growth between collections (pkg/gctune).
	GC gctune.Config `yaml:"gc"`
	// File is the --config.file path ("" when none), for reloads.
	File string `yaml:"-"`
}

// Foreign holds the sections of the shared file that the other binary
// reads, undecoded: a binary checks only their names (Unmarshal), so one
// file serves the cluster and a misspelt section is still an error. The
// other binary validates their content (distributor check-config checks
// both).
type Foreign map[string]yaml.Node

// Binary is one binary's configuration: Common and its own sections.
type Binary interface {
	// Base returns the common sections.
	Base() *Common
	// Role is the binary.
	Role() Role
	// RegisterFlags registers the flags of the binary's own sections, with
	// their current values as defaults.
	RegisterFlags(fs *flag.FlagSet)
	// Loaded is called once the file at path was decoded, before the
	// flags are applied over it.
	Loaded(path string)
	// Validate checks the binary's own sections; errors name the field.
	Validate() error
	// ForeignSections returns the other binary's sections found in the
	// file.
	ForeignSections() Foreign
}

// The top-level sections of the file that only one binary reads. A binary
// accepts the other's without decoding them; distributorconfig's tests pin
// these lists to the two configuration types.
var (
	DistributorSections = []string{"rate_limits", "rules", "rules_name_validation_scheme", "rules_tag_label",
		"rules_type_cache_size", "rules_test_max_body_bytes"}
	// backend and retrospective are read by both: the distributor's
	// retrospective jobs default to the forwarding backend
	// (distributorconfig.BackendView), and ingesters coordinate the jobs.
	IngesterSections = []string{"ingester", "backends", "forward", "wal", "cardinality", "preview_reservoir"}
)

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

// Parse fills b, a binary's configuration holding its defaults, from the
// binary's arguments: flags over the --config.file YAML over the defaults.
// It returns flag.ErrHelp (wrapped in nothing) when -h was asked for,
// ErrVersion when --version was, and a UsageError for a bad flag or
// configuration. about is printed at the top of -h.
func Parse(b Binary, args []string, stderr io.Writer, about string) error {
	cfg, role := b.Base(), b.Role()
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
	cfg.GC.RegisterFlags("gc.", fs)
	b.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of promgov %s:\n", role)
		if about != "" {
			fmt.Fprintln(stderr)
			fmt.Fprint(stderr, about)
		}
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Err: err}
	}
	if *showVersion {
		return ErrVersion
	}
	if fs.NArg() > 0 {
		return &UsageError{Err: fmt.Errorf("unexpected arguments %q; every option is a --flag", fs.Args())}
	}
	cfg.File = file
	if file != "" {
		if err := loadFile(file, b); err != nil {
			return &UsageError{Err: err}
		}
		b.Loaded(file)
		// Flags given on the command line win over the file.
		if err := fs.Parse(args); err != nil {
			return &UsageError{Err: err}
		}
	}
	if err := Validate(b); err != nil {
		return &UsageError{Err: fmt.Errorf("invalid configuration: %w", err)}
	}
	return nil
}

func loadFile(path string, b Binary) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read --config.file: %w", err)
	}
	return Unmarshal(data, b)
}

// Unmarshal decodes YAML onto b, refusing unknown fields so that a typo is
// an error rather than a silently ignored setting: b's own sections are
// decoded strictly, the other binary's are accepted by name.
func Unmarshal(data []byte, b Binary) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(b); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse configuration file: %w", err)
	}
	other := DistributorSections
	if b.Role() == RoleDistributor {
		other = IngesterSections
	}
	keys := slices.Sorted(maps.Keys(b.ForeignSections()))
	for _, k := range keys {
		if !slices.Contains(other, k) {
			return fmt.Errorf("parse configuration file: line %d: field %s not found: it is no section of the configuration file", b.ForeignSections()[k].Line, k)
		}
	}
	return nil
}

// Validate checks the common sections and then b's own.
func Validate(b Binary) error {
	if err := b.Base().validate(); err != nil {
		return err
	}
	return b.Validate()
}

// validate checks the common sections.
func (c *Common) validate() error {
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
	return c.GC.Validate()
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
func NewLogger(c *Common, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	l, _ := ParseLevel(c.LogLevel) // checked by Validate
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}
