package retro

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Config is the `retrospective:` section: where jobs are kept and the
// process-wide safety settings.
type Config struct {
	// Directory holds the jobs and their checkpoints.
	Directory string `yaml:"directory"`
	// DisableDelete refuses every job that asks to delete originals.
	DisableDelete bool `yaml:"disable_delete"`
	// ConfirmAboveSeries: executing a job over more stored series needs
	// confirm: true.
	ConfirmAboveSeries int `yaml:"confirm_above_series"`
	// BatchSeries is the number of series per batch (one checkpoint each).
	BatchSeries int `yaml:"batch_series"`
	// VerifyTimeout bounds how long a batch waits for its copy to be
	// readable (VictoriaMetrics makes written data searchable after about
	// a second).
	VerifyTimeout time.Duration `yaml:"verify_timeout"`
	// MaxSamplesPerWrite bounds one remote write request.
	MaxSamplesPerWrite int `yaml:"max_samples_per_write"`
	// Slice is the time slice a batch reads, writes and verifies at once:
	// what a batch holds in memory is at most batch_series series × one
	// slice of samples, whatever the job's range.
	Slice time.Duration `yaml:"slice"`
	// BackendKind is the default backend's kind: prometheus or
	// victoriametrics.
	BackendKind string `yaml:"backend_kind"`
	// BackendURL is the default backend's base URL; empty: the forwarding
	// backend's URL (backend.url) without /api/v1/write.
	BackendURL string `yaml:"backend_url"`
	// LeaseTTL is how long a coordinator's claim on a job in the governance
	// store lasts without renewal: a node that stopped renewing for longer
	// loses the job to the ring's choice (docs/retrospective.md).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// ScanInterval is how often a coordinator looks for the jobs the ring
	// gives it and renews its leases (also at every ring change); at most a
	// third of LeaseTTL.
	ScanInterval time.Duration `yaml:"scan_interval"`
	// Retention is how long a job that succeeded, failed or was cancelled
	// is kept after its last change (gc.go); 0 keeps jobs forever.
	Retention time.Duration `yaml:"retention"`
}

// DefaultConfig returns the flag defaults.
func DefaultConfig() Config {
	return Config{Directory: "data/jobs", ConfirmAboveSeries: 10000, BatchSeries: 100, VerifyTimeout: 30 * time.Second, MaxSamplesPerWrite: 10000, Slice: 6 * time.Hour, BackendKind: KindPrometheus,
		LeaseTTL: 30 * time.Second, ScanInterval: 5 * time.Second, Retention: 30 * 24 * time.Hour}
}

// RegisterFlags registers the flags under prefix (e.g. "retrospective.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Directory, prefix+"directory", d.Directory, "Directory of retrospective jobs and their checkpoints.")
	fs.BoolVar(&c.DisableDelete, prefix+"disable-delete", d.DisableDelete, "Refuse every retrospective job that asks to delete originals.")
	fs.IntVar(&c.ConfirmAboveSeries, prefix+"confirm-above-series", d.ConfirmAboveSeries, "Executing a retrospective job over more stored series needs confirm: true.")
	fs.IntVar(&c.BatchSeries, prefix+"batch-series", d.BatchSeries, "Series per batch of a retrospective job (one checkpoint per batch).")
	fs.DurationVar(&c.VerifyTimeout, prefix+"verify-timeout", d.VerifyTimeout, "How long a batch waits for its copy to be readable before the job pauses.")
	fs.IntVar(&c.MaxSamplesPerWrite, prefix+"max-samples-per-write", d.MaxSamplesPerWrite, "Samples per remote write request of a retrospective job.")
	fs.DurationVar(&c.Slice, prefix+"slice", d.Slice, "Time slice a batch of a retrospective job reads, writes and verifies at once (bounds its memory).")
	fs.StringVar(&c.BackendKind, prefix+"backend-kind", d.BackendKind, "Kind of the default backend of retrospective jobs: prometheus, victoriametrics, mimir or thanos.")
	fs.DurationVar(&c.LeaseTTL, prefix+"lease-ttl", d.LeaseTTL, "How long a coordinator's unrenewed claim on a retrospective job in the governance store lasts before another ingester takes the job.")
	fs.DurationVar(&c.ScanInterval, prefix+"scan-interval", d.ScanInterval, "How often an ingester looks for the retrospective jobs the ring gives it and renews its leases (at most a third of --retrospective.lease-ttl).")
	fs.DurationVar(&c.Retention, prefix+"retention", d.Retention, "How long a retrospective job that succeeded, failed or was cancelled is kept after its last change, with its plan and output (0: forever; paused jobs are always kept).")
	fs.StringVar(&c.BackendURL, prefix+"backend-url", d.BackendURL, "Base URL of the default backend of retrospective jobs (default: --backend.url without /api/v1/write).")
}

// Validate checks the settings; errors name the field.
func (c *Config) Validate() error {
	switch {
	case c.Directory == "":
		return errors.New("retrospective.directory: must not be empty")
	case c.ConfirmAboveSeries < 0:
		return errors.New("retrospective.confirm_above_series: must not be negative")
	case c.BatchSeries <= 0:
		return errors.New("retrospective.batch_series: must be positive")
	case c.VerifyTimeout <= 0:
		return errors.New("retrospective.verify_timeout: must be positive")
	case c.MaxSamplesPerWrite <= 0:
		return errors.New("retrospective.max_samples_per_write: must be positive")
	case c.Slice < time.Minute:
		return fmt.Errorf("retrospective.slice %s: must be at least 1m", c.Slice)
	case c.Retention < 0:
		return fmt.Errorf("retrospective.retention %s: must not be negative (0 keeps jobs forever)", c.Retention)
	case c.ScanInterval <= 0:
		return errors.New("retrospective.scan_interval: must be positive")
	case c.LeaseTTL < 3*c.ScanInterval:
		return fmt.Errorf("retrospective.lease_ttl %s: must be at least three times retrospective.scan_interval (%s), or a live coordinator loses its jobs", c.LeaseTTL, c.ScanInterval)
	case !validKind(c.BackendKind):
		return fmt.Errorf("retrospective.backend_kind %q: use %s", c.BackendKind, kinds)
	}
	return nil
}

// DefaultBackend is the backend jobs use when they name none: BackendURL, or
// the forwarding backend's remote write URL without /api/v1/write.
func (c *Config) DefaultBackend(remoteWriteURL string) *HTTPBackendConfig {
	u := c.BackendURL
	if u == "" {
		u = strings.TrimSuffix(strings.TrimRight(remoteWriteURL, "/"), "/api/v1/write")
	}
	if u == "" {
		return nil
	}
	return &HTTPBackendConfig{Kind: c.BackendKind, URL: u}
}
