// Package usage is promgov's usage intelligence: it learns which metrics and
// labels dashboards, rules and people actually read (sources), joins that
// with what each metric costs (series, samples/s), classifies every metric
// seen in traffic as used, partially_used or unused, suggests relabel rules,
// and decides — with fail-safes — which unused metrics the write path drops.
//
// The pieces: Source implementations load consumers (dashboards, rules,
// query logs); AccessStats records queries (fed by the query tap in
// pkg/usage/tap); Manager reloads sources on an interval, classifies against
// an injected CostSource and feeds the drop Policy; NewAPI serves
// /promgov/api/v1/usage/{metrics,sources,suggestions,policy}.
package usage

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Drop modes.
const (
	// ModeOff disables the drop policy.
	ModeOff = "off"
	// ModeShadow computes and reports what would be dropped, dropping nothing.
	ModeShadow = "shadow"
	// ModeEnforce drops what the policy selects.
	ModeEnforce = "enforce"
)

// Config is the `usage:` configuration section.
type Config struct {
	// ReloadInterval is how often every source is reloaded.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// LoadTimeout bounds one source load.
	LoadTimeout time.Duration `yaml:"load_timeout"`
	// Dashboards configures dashboard sources.
	Dashboards DashboardsConfig `yaml:"dashboards"`
	// Rules configures rule sources.
	Rules RulesConfig `yaml:"rules"`
	// Queries configures the query tap and query logs.
	Queries QueriesConfig `yaml:"queries"`
	// DropUnused configures the write-path drop policy.
	DropUnused DropConfig `yaml:"drop_unused"`
}

// DashboardsConfig lists dashboard sources.
type DashboardsConfig struct {
	// Paths are dashboard files or folders (JSON, provisioning folders,
	// ConfigMaps and GrafanaDashboard YAML).
	Paths []string `yaml:"paths"`
	// Grafana are Grafana instances read through the HTTP API.
	Grafana []GrafanaConfig `yaml:"grafana"`
}

// GrafanaConfig is one Grafana instance.
type GrafanaConfig struct {
	// URL is Grafana's base URL.
	URL string `yaml:"url"`
	// TokenFile holds a service-account token (read on every load).
	TokenFile string `yaml:"token_file"`
	// OrgID selects the organisation (0: the token's default).
	OrgID int `yaml:"org_id"`
}

// RulesConfig lists rule sources.
type RulesConfig struct {
	// Paths are Prometheus rule files / PrometheusRule YAML, or folders of them.
	Paths []string `yaml:"paths"`
	// GrafanaAlertPaths are Grafana alerting provisioning files or folders.
	GrafanaAlertPaths []string `yaml:"grafana_alert_paths"`
	// APIs are Prometheus-compatible rules APIs (Prometheus, Mimir/Cortex, vmalert).
	APIs []RulesAPIConfig `yaml:"apis"`
}

// RulesAPIConfig is one rules API endpoint.
type RulesAPIConfig struct {
	// URL is the API base; the client requests URL + /api/v1/rules
	// (Mimir: http://mimir/prometheus).
	URL string `yaml:"url"`
	// Tenant is sent as X-Scope-OrgID.
	Tenant string `yaml:"tenant"`
	// BearerTokenFile holds a bearer token (read on every load).
	BearerTokenFile string `yaml:"bearer_token_file"`
}

// QueriesConfig configures query usage collection.
type QueriesConfig struct {
	// BackendURL is where the query tap proxies the read API.
	BackendURL string `yaml:"backend_url"`
	// UserHeader names the header carrying the querying user.
	UserHeader string `yaml:"user_header"`
	// LogFiles are Prometheus query log files to read.
	LogFiles []string `yaml:"log_files"`
	// MaxMetrics bounds the metric names tracked by query statistics.
	MaxMetrics int `yaml:"max_metrics"`
	// MaxUsersPerMetric bounds the distinct users remembered per metric.
	MaxUsersPerMetric int `yaml:"max_users_per_metric"`
	// ShipInterval is how often a distributor sends the statistics it
	// recorded to the ingesters that own the metrics.
	ShipInterval time.Duration `yaml:"ship_interval"`
	// SnapshotPath is where an ingester persists the statistics it owns;
	// empty means access.snapshot in the WAL directory.
	SnapshotPath string `yaml:"snapshot_path"`
	// SnapshotInterval is how often an ingester writes that snapshot.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
}

// DropConfig is `usage.drop_unused`.
type DropConfig struct {
	// Mode is off, shadow or enforce.
	Mode string `yaml:"mode"`
	// GracePeriod is how long a metric must have been unused, with every
	// source healthy the whole time, before it is dropped.
	GracePeriod time.Duration `yaml:"grace_period"`
	// Allow, when non-empty, limits dropping to metric names matching one of
	// these regexes (fully anchored).
	Allow []string `yaml:"allow"`
	// Deny lists metric name regexes (fully anchored) that are never dropped.
	// Deny wins over Allow.
	Deny []string `yaml:"deny"`
	// IgnoreParseErrors lets sources with unparseable expressions count as
	// healthy. By default a parse error blocks dropping: the unparsed
	// expression may read a metric we would otherwise drop.
	IgnoreParseErrors bool `yaml:"ignore_parse_errors"`
}

// DefaultConfig returns the defaults used by RegisterFlags.
func DefaultConfig() Config {
	return Config{
		ReloadInterval: 5 * time.Minute,
		LoadTimeout:    time.Minute,
		Queries: QueriesConfig{
			UserHeader:        "X-Grafana-User",
			MaxMetrics:        200000,
			MaxUsersPerMetric: 100,
			ShipInterval:      5 * time.Second,
			SnapshotInterval:  time.Minute,
		},
		DropUnused: DropConfig{Mode: ModeOff, GracePeriod: 30 * 24 * time.Hour},
	}
}

// stringList is a repeatable / comma-separated flag.
type stringList struct{ p *[]string }

// String implements flag.Value.
func (s stringList) String() string {
	if s.p == nil {
		return ""
	}
	return strings.Join(*s.p, ",")
}

// Set implements flag.Value; values are appended, comma-separated parts split.
func (s stringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s.p = append(*s.p, part)
		}
	}
	return nil
}

// RegisterFlags registers flags for c, with c's current values as defaults
// (call after setting c = DefaultConfig()). Grafana instances and rules
// APIs are YAML-only.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.DurationVar(&c.ReloadInterval, prefix+"usage.reload-interval", c.ReloadInterval, "How often usage sources are reloaded.")
	fs.DurationVar(&c.LoadTimeout, prefix+"usage.load-timeout", c.LoadTimeout, "Timeout of one usage source load.")
	fs.Var(stringList{&c.Dashboards.Paths}, prefix+"usage.dashboards-path", "Dashboard file or folder (repeatable, comma-separated).")
	fs.Var(stringList{&c.Rules.Paths}, prefix+"usage.rules-path", "Prometheus rule file or folder (repeatable, comma-separated).")
	fs.Var(stringList{&c.Rules.GrafanaAlertPaths}, prefix+"usage.grafana-alerts-path", "Grafana alert provisioning file or folder (repeatable).")
	fs.Var(stringList{&c.Queries.LogFiles}, prefix+"usage.query-log-file", "Prometheus query log file (repeatable).")
	fs.StringVar(&c.Queries.BackendURL, prefix+"query.backend-url", c.Queries.BackendURL, "Prometheus-compatible backend the query tap proxies the Prometheus read API (/api/v1/query, labels, series, metadata, rules, status, ...) to; empty serves no read API.")
	fs.StringVar(&c.Queries.UserHeader, prefix+"usage.user-header", c.Queries.UserHeader, "Request header naming the querying user.")
	fs.IntVar(&c.Queries.MaxMetrics, prefix+"usage.max-metrics", c.Queries.MaxMetrics, "Maximum metric names tracked by query statistics.")
	fs.IntVar(&c.Queries.MaxUsersPerMetric, prefix+"usage.max-users-per-metric", c.Queries.MaxUsersPerMetric, "Maximum distinct users remembered per metric.")
	fs.DurationVar(&c.Queries.ShipInterval, prefix+"usage.ship-interval", c.Queries.ShipInterval, "How often a distributor sends query statistics to the owning ingesters.")
	fs.StringVar(&c.DropUnused.Mode, prefix+"usage.drop-unused.mode", c.DropUnused.Mode, "Drop policy for unused metrics: off, shadow or enforce.")
	fs.DurationVar(&c.DropUnused.GracePeriod, prefix+"usage.drop-unused.grace-period", c.DropUnused.GracePeriod, "How long a metric must be unused, with healthy sources, before it is dropped.")
	fs.Var(stringList{&c.DropUnused.Allow}, prefix+"usage.drop-unused.allow", "Only metrics matching these regexes may be dropped (repeatable).")
	fs.Var(stringList{&c.DropUnused.Deny}, prefix+"usage.drop-unused.deny", "Metrics matching these regexes are never dropped (repeatable).")
	fs.BoolVar(&c.DropUnused.IgnoreParseErrors, prefix+"usage.drop-unused.ignore-parse-errors", c.DropUnused.IgnoreParseErrors, "Do not block dropping on unparseable source expressions.")
}

// RegisterIngesterFlags registers the flags an ingester reads: the bounds
// and persistence of the query statistics it owns (with c's current values
// as defaults). The rest of the section is the distributors'.
func (c *Config) RegisterIngesterFlags(prefix string, fs *flag.FlagSet) {
	fs.IntVar(&c.Queries.MaxMetrics, prefix+"usage.max-metrics", c.Queries.MaxMetrics, "Maximum metric names whose query statistics are kept.")
	fs.IntVar(&c.Queries.MaxUsersPerMetric, prefix+"usage.max-users-per-metric", c.Queries.MaxUsersPerMetric, "Maximum distinct users remembered per metric.")
	fs.StringVar(&c.Queries.SnapshotPath, prefix+"usage.snapshot-path", c.Queries.SnapshotPath, "File the owned query statistics are persisted to (default: access.snapshot in the WAL directory).")
	fs.DurationVar(&c.Queries.SnapshotInterval, prefix+"usage.snapshot-interval", c.Queries.SnapshotInterval, "How often the owned query statistics are persisted.")
}

// Validate checks c and names the offending yaml field.
func (c *Config) Validate() error {
	var errs []error
	if c.ReloadInterval <= 0 {
		errs = append(errs, errors.New("usage.reload_interval: must be > 0 (e.g. 5m)"))
	}
	if c.LoadTimeout <= 0 {
		errs = append(errs, errors.New("usage.load_timeout: must be > 0 (e.g. 1m)"))
	}
	for i, g := range c.Dashboards.Grafana {
		if err := absURL(g.URL); err != nil {
			errs = append(errs, fmt.Errorf("usage.dashboards.grafana[%d].url: %w", i, err))
		}
	}
	for i, a := range c.Rules.APIs {
		if err := absURL(a.URL); err != nil {
			errs = append(errs, fmt.Errorf("usage.rules.apis[%d].url: %w", i, err))
		}
	}
	if c.Queries.BackendURL != "" {
		if err := absURL(c.Queries.BackendURL); err != nil {
			errs = append(errs, fmt.Errorf("usage.queries.backend_url: %w", err))
		}
	}
	if c.Queries.MaxMetrics <= 0 {
		errs = append(errs, errors.New("usage.queries.max_metrics: must be > 0 (e.g. 200000)"))
	}
	if c.Queries.MaxUsersPerMetric <= 0 {
		errs = append(errs, errors.New("usage.queries.max_users_per_metric: must be > 0 (e.g. 100)"))
	}
	if c.Queries.ShipInterval <= 0 {
		errs = append(errs, errors.New("usage.queries.ship_interval: must be > 0 (e.g. 5s)"))
	}
	if c.Queries.SnapshotInterval <= 0 {
		errs = append(errs, errors.New("usage.queries.snapshot_interval: must be > 0 (e.g. 1m)"))
	}
	if err := c.DropUnused.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the drop policy section.
func (d *DropConfig) Validate() error {
	var errs []error
	switch d.Mode {
	case "", ModeOff, ModeShadow, ModeEnforce:
	default:
		errs = append(errs, fmt.Errorf("usage.drop_unused.mode: %q is not one of off, shadow, enforce", d.Mode))
	}
	if d.GracePeriod < 0 {
		errs = append(errs, errors.New("usage.drop_unused.grace_period: must be >= 0 (e.g. 720h)"))
	}
	if d.Mode == ModeEnforce && d.GracePeriod == 0 {
		errs = append(errs, errors.New("usage.drop_unused.grace_period: must be > 0 in enforce mode (e.g. 720h)"))
	}
	for i, r := range d.Allow {
		if _, err := regexp.Compile("^(?:" + r + ")$"); err != nil {
			errs = append(errs, fmt.Errorf("usage.drop_unused.allow[%d]: invalid regex: %w", i, err))
		}
	}
	for i, r := range d.Deny {
		if _, err := regexp.Compile("^(?:" + r + ")$"); err != nil {
			errs = append(errs, fmt.Errorf("usage.drop_unused.deny[%d]: invalid regex: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func absURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http(s) URL", s)
	}
	return nil
}
