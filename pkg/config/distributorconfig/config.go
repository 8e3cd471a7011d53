// Package distributorconfig is the distributor's configuration: the
// common sections of the shared file (config.Common) and the ones a
// distributor runs (remote write, rate limits, governance rules, usage).
// It lives apart from pkg/config so that the ingester, which reads the
// same file, links none of the distributor's packages. Its check-config
// checks a file for both binaries.
package distributorconfig

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/distributor"
	"github.com/promgov/promgov/pkg/ratelimit"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
)

// Config is the distributor's configuration. The ingesters' sections of
// the shared file are accepted by name and not decoded (Other).
type Config struct {
	config.Common `yaml:",inline"`
	// RateLimits is the per-tenant ingestion rate limits.
	RateLimits  ratelimit.Config   `yaml:"rate_limits"`
	Distributor distributor.Config `yaml:"distributor"`
	// Rules is the governance rules section: the top-level `rules:` list
	// and `rules_*` settings (see docs/rules.md).
	Rules rules.Config `yaml:",inline"`
	// Aggregate is the ingesters' aggregation rules, which the rules test
	// API shows (see docs/aggregation.md).
	Aggregate aggregate.Config `yaml:",inline"`
	// Usage is the usage intelligence: sources, the query tap
	// (--query.backend-url) and the drop_unused policy (see docs/usage.md).
	Usage usage.Config `yaml:"usage"`
	// Retrospective is where retrospective jobs run (docs/retrospective.md).
	Retrospective retro.Config `yaml:"retrospective"`
	// Backend is what the distributor reads of the ingesters' `backend:`
	// section: the forwarding backend, the default of retrospective jobs.
	Backend BackendView `yaml:"backend"`
	// Other are the ingesters' sections (config.IngesterSections).
	Other config.Foreign `yaml:",inline"`
}

// BackendView is the part of the ingesters' `backend:` section a
// distributor reads; the rest is the ingesters' business.
type BackendView struct {
	URL   string         `yaml:"url"`
	Other config.Foreign `yaml:",inline"`
}

var _ config.Binary = (*Config)(nil)

// Parse builds the distributor's configuration from its arguments (see
// config.Parse).
func Parse(args []string, stderr io.Writer) (*Config, error) {
	cfg := &Config{}
	if err := config.Parse(cfg, args, stderr, ""); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Base implements config.Binary.
func (c *Config) Base() *config.Common { return &c.Common }

// Role implements config.Binary.
func (c *Config) Role() config.Role { return config.RoleDistributor }

// ForeignSections implements config.Binary.
func (c *Config) ForeignSections() config.Foreign { return c.Other }

// Loaded implements config.Binary; nothing in the distributor's sections
// is relative to the file.
func (c *Config) Loaded(string) {}

// RegisterFlags implements config.Binary.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Distributor = distributor.DefaultConfig()
	c.Distributor.RegisterFlags(distributor.FlagPrefix, fs)
	c.RateLimits.RegisterFlags("rate-limit.", fs)
	c.Rules = rules.DefaultConfig()
	c.Rules.RegisterFlags("", fs)
	c.Usage = usage.DefaultConfig()
	c.Usage.RegisterFlags("", fs)
	c.Retrospective.RegisterFlags("retrospective.", fs)
}

// Validate implements config.Binary.
func (c *Config) Validate() error {
	if err := c.Distributor.Validate(); err != nil {
		return err
	}
	if err := c.RateLimits.Validate(); err != nil {
		return err
	}
	if err := c.Rules.Validate(); err != nil {
		return err
	}
	if err := c.Retrospective.Validate(); err != nil {
		return err
	}
	return c.Usage.Validate()
}

// CheckReport is what CheckFile found in a valid file.
type CheckReport struct {
	// Rules is the number of governance rules.
	Rules int
	// Notes are settings the file leaves to the command line.
	Notes []string
}

// CheckFile validates a configuration file as both binaries load it: every
// section a distributor reads (the rules compiled) and every section an
// ingester reads (config.CheckIngesterFile), so a file that passes starts
// both.
func CheckFile(path string) (CheckReport, error) {
	var rep CheckReport
	dist, err := Parse([]string{"--config.file=" + path}, io.Discard)
	if err != nil {
		return rep, fmt.Errorf("as a distributor loads it: %w", config.UnwrapUsage(err))
	}
	eng, err := rules.Compile(dist.Rules, nil)
	if err != nil {
		return rep, fmt.Errorf("as a distributor loads it: %w", err)
	}
	defer eng.Close(context.Background()) // its plugins, loaded and self-tested
	rep.Rules = eng.Len()
	rep.Notes, err = config.CheckIngesterFile(path)
	return rep, err
}

// CheckConfigCommand is the check-config of the distributor and promgovctl
// (bin names the command in its usage text): every file as both binaries
// load it (CheckFile).
func CheckConfigCommand(bin string, args []string, stdout io.Writer) error {
	return config.CheckConfigCommand(bin,
		"Validate promgov configuration files as both binaries load them: every distributor and every ingester section, rules and limits compiled.",
		func(path string) (string, []string, error) {
			rep, err := CheckFile(path)
			return fmt.Sprintf("valid for distributors and ingesters, %d rules", rep.Rules), rep.Notes, err
		}, args, stdout)
}
