package cluster

import (
	"errors"
	"flag"
	"time"
)

// Config configures peer sketch sync, handoff and the analytics fan-out.
type Config struct {
	// SyncInterval is how often an ingester pulls its peers' tenant
	// sketches. It bounds how stale the cluster-wide tenant total is.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// SyncTimeout bounds one peer's TenantSketches call.
	SyncTimeout time.Duration `yaml:"sync_timeout"`
	// HandoffSettle is how long after a placement change the new owner
	// pulls moved metrics a second time, collecting what reached the
	// previous owner while the change spread to every distributor.
	HandoffSettle time.Duration `yaml:"handoff_settle"`
	// HandoffTimeout bounds one handoff pull from one peer.
	HandoffTimeout time.Duration `yaml:"handoff_timeout"`
	// QueryTimeout bounds one ingester's answer to the distributor's
	// analytics fan-out.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// DefaultConfig returns the defaults RegisterFlags registers.
func DefaultConfig() Config {
	return Config{
		SyncInterval:   3 * time.Second,
		SyncTimeout:    2 * time.Second,
		HandoffSettle:  5 * time.Second,
		HandoffTimeout: 30 * time.Second,
		QueryTimeout:   5 * time.Second,
	}
}

// RegisterFlags registers the flags, prefix prepended, with the defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.SyncInterval, prefix+"sync-interval", d.SyncInterval, "How often an ingester pulls its peers' tenant sketches (cluster-wide tenant limits).")
	fs.DurationVar(&c.SyncTimeout, prefix+"sync-timeout", d.SyncTimeout, "Timeout of one peer's tenant sketch pull.")
	fs.DurationVar(&c.HandoffSettle, prefix+"handoff-settle", d.HandoffSettle, "Delay after a ring change before moved metrics are pulled a second time.")
	fs.DurationVar(&c.HandoffTimeout, prefix+"handoff-timeout", d.HandoffTimeout, "Timeout of one ring-change state pull from one peer.")
	fs.DurationVar(&c.QueryTimeout, prefix+"query-timeout", d.QueryTimeout, "Timeout of one ingester's answer to the analytics API fan-out.")
}

// Validate reports the first invalid field, naming it and the fix.
func (c *Config) Validate() error {
	switch {
	case c.SyncInterval <= 0:
		return errors.New("sync_interval: must be positive, e.g. 3s")
	case c.SyncTimeout <= 0:
		return errors.New("sync_timeout: must be positive, e.g. 2s")
	case c.HandoffSettle < 0:
		return errors.New("handoff_settle: must not be negative, e.g. 5s (0 disables the second pull)")
	case c.HandoffTimeout <= 0:
		return errors.New("handoff_timeout: must be positive, e.g. 30s")
	case c.QueryTimeout <= 0:
		return errors.New("query_timeout: must be positive, e.g. 5s")
	}
	return nil
}
