package config

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/reservoir"
	"github.com/promgov/promgov/pkg/retro"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/wal"
)

// IngesterConfig is the ingester's configuration: the common sections and
// the ones an ingester runs. The distributor's sections of the shared file
// are accepted by name and not decoded (Foreign), except the tenant header
// the ingester's APIs read too.
type IngesterConfig struct {
	Common `yaml:",inline"`
	// Distributor is what the ingester reads of the `distributor:`
	// section.
	Distributor DistributorView       `yaml:"distributor"`
	Ingester    ingester.Config       `yaml:"ingester"`
	Backend     forward.BackendConfig `yaml:"backend"`
	// Backends lists several backends, each forwarded to independently
	// (see forward.Backends); then backend: and --backend.url stay unset.
	Backends []forward.BackendConfig `yaml:"backends"`
	Forward  forward.Config          `yaml:"forward"`
	WAL      wal.Config              `yaml:"wal"`
	// Cardinality is the cardinality tracking and its `limits:` (see
	// docs/cardinality.md).
	Cardinality cardinality.Config `yaml:"cardinality"`
	// Aggregate is the aggregation rules: the top-level `aggregations:`
	// list, next to `rules:` (see docs/aggregation.md).
	Aggregate aggregate.Config `yaml:",inline"`
	// Usage is the usage section; an ingester reads the query statistics
	// settings (usage.queries: max_metrics, max_users_per_metric,
	// snapshot_path, snapshot_interval).
	Usage usage.Config `yaml:"usage"`
	// PreviewReservoir is the sample of recently seen series per owned
	// metric, the input of the impact preview (docs/governance.md,
	// "Impact preview").
	PreviewReservoir reservoir.Config `yaml:"preview_reservoir"`
	// Retrospective configures the retrospective jobs this ingester
	// coordinates when the governance store is configured
	// (docs/retrospective.md); the section is shared with distributors.
	Retrospective retro.Config `yaml:"retrospective"`
	// Other are the distributors' sections (DistributorSections).
	Other Foreign `yaml:",inline"`
}

// DistributorView is the part of the distributor's section an ingester
// reads: the cluster's tenant header, for its analytics APIs. The rest is
// the distributor's business.
type DistributorView struct {
	TenantHeader string  `yaml:"tenant_header"`
	Other        Foreign `yaml:",inline"`
}

var _ Binary = (*IngesterConfig)(nil)

// ingesterAbout heads the ingester's -h.
const ingesterAbout = `DURABILITY: a push is acknowledged only after it is in the write-ahead log (--wal.dir).
--wal.sync-policy: "always" and "group" (default) fsync before acknowledging, so nothing
acknowledged is lost even on power loss; "interval" acknowledges after the write and fsyncs
every --wal.sync-interval: a killed process loses nothing, a kernel crash or power loss
can lose up to that interval of acknowledged data. See docs/wal.md.
`

// ParseIngester builds the ingester's configuration from its arguments
// (see Parse).
func ParseIngester(args []string, stderr io.Writer) (*IngesterConfig, error) {
	cfg := &IngesterConfig{}
	if err := Parse(cfg, args, stderr, ingesterAbout); err != nil {
		return nil, err
	}
	cfg.defaultPaths()
	return cfg, nil
}

// Base implements Binary.
func (c *IngesterConfig) Base() *Common { return &c.Common }

// Role implements Binary.
func (c *IngesterConfig) Role() Role { return RoleIngester }

// ForeignSections implements Binary.
func (c *IngesterConfig) ForeignSections() Foreign { return c.Other }

// RegisterFlags implements Binary.
func (c *IngesterConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Ingester = ingester.DefaultConfig()
	c.Ingester.RegisterFlags("grpc.", fs)
	c.Ingester.RegisterInstanceFlags("ingester.", fs)
	c.Backend.RegisterFlags("backend.", fs)
	c.Forward.RegisterFlags("forward.", fs)
	c.WAL.RegisterFlags("wal.", fs)
	c.Cardinality.RegisterFlags("cardinality.", fs)
	c.Aggregate.RegisterFlags("aggregations.", fs)
	c.PreviewReservoir.RegisterFlags("preview.reservoir.", fs)
	c.Retrospective.RegisterFlags("retrospective.", fs)
	c.Usage = usage.DefaultConfig()
	c.Usage.RegisterIngesterFlags("", fs)
}

// Loaded implements Binary: files named in a backend's HTTP settings
// (password_file, ca_file, ...) are relative to the configuration file.
func (c *IngesterConfig) Loaded(path string) {
	dir := filepath.Dir(path)
	c.Backend.HTTP.SetDirectory(dir)
	for i := range c.Backends {
		c.Backends[i].HTTP.SetDirectory(dir)
	}
}

// Validate implements Binary.
func (c *IngesterConfig) Validate() error {
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
	if err := c.Retrospective.Validate(); err != nil {
		return err
	}
	return c.Forward.Validate()
}

// TenantHeader is the header the ingester's analytics API reads the
// tenant from: the cluster's (distributor.tenant_header in the shared
// file), X-Scope-OrgID by default.
func (c *IngesterConfig) TenantHeader() string {
	if h := c.Distributor.TenantHeader; h != "" {
		return h
	}
	return remotewrite.DefaultTenantHeader
}

// defaultPaths puts the cardinality, aggregation and query statistics
// snapshots next to the WAL unless the configuration names their files.
func (c *IngesterConfig) defaultPaths() {
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
