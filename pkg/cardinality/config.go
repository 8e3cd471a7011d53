package cardinality

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config configures a Tracker. It is the package's one config struct; the
// `limits:` section is the nested LimitsConfig.
type Config struct {
	// Window is the rolling window estimates cover.
	Window time.Duration `yaml:"window"`
	// SubWindows is how many sub-window sketches make up Window. Reads merge
	// them; the oldest one drops out as time advances, so there is no reset
	// cliff, only a step of Window/SubWindows.
	SubWindows int `yaml:"sub_windows"`
	// Precision is the HyperLogLog precision p of series and tenant sketches
	// (relative standard error 1.04/sqrt(2^p); 14 → 0.81 %).
	Precision uint8 `yaml:"precision"`
	// LabelPrecision is the precision of per-label value sketches, which are
	// only displayed (the values limit uses exact sets).
	LabelPrecision uint8 `yaml:"label_precision"`
	// LabelDropEstimates keeps, per tracked label name, a second sketch ring
	// of the series' label sets without that label, so that answers carry
	// SeriesWithout: the series the metric would have if the label were
	// dropped. It costs one more sketch per (tenant, metric, label name),
	// at Precision (see docs/cardinality.md, "Label-drop estimates").
	LabelDropEstimates bool `yaml:"label_drop_estimates"`
	// MaxTrackedMetrics caps the (tenant, metric) pairs tracked by one
	// ingester. Beyond it new metrics are admitted untracked and counted.
	MaxTrackedMetrics int `yaml:"max_tracked_metrics"`
	// MaxLabelPairs caps the (tenant, metric, label name) sketches tracked by
	// one ingester. Beyond it new label names are not tracked and counted.
	MaxLabelPairs int `yaml:"max_label_pairs"`
	// RefreshInterval is how often Run refreshes tenant totals, near-limit
	// gauges and rotates sub-windows.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// PeerSketchTTL is how long a tenant sketch received from a peer counts
	// toward the cluster-wide tenant total without being refreshed.
	PeerSketchTTL time.Duration `yaml:"peer_sketch_ttl"`
	// SnapshotPath is the file state is snapshotted to and restored from.
	// Empty disables persistence.
	SnapshotPath string `yaml:"snapshot_path"`
	// SnapshotInterval is how often Run writes a snapshot.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// FailOpenDuringTransfer admits series that would be refused while a
	// ring-change state transfer is in progress.
	FailOpenDuringTransfer bool `yaml:"fail_open_during_transfer"`
	// NearLimitMaxSeries bounds how many near-limit gauge series are exported.
	NearLimitMaxSeries int `yaml:"near_limit_max_series"`
	// MetricsMaxTenants bounds the tenants that get their own series in the
	// per-tenant self-metrics; the refusals of later tenants are counted
	// under tenant="__other__". Tenant IDs come from request headers, so
	// without a bound any client could grow /metrics at will.
	MetricsMaxTenants int `yaml:"metrics_max_tenants"`
	// Limits are the cardinality limits.
	Limits LimitsConfig `yaml:"limits"`
}

// DefaultConfig returns the defaults RegisterFlags registers.
func DefaultConfig() Config {
	return Config{
		Window:                 time.Hour,
		SubWindows:             6,
		Precision:              14,
		LabelPrecision:         12,
		LabelDropEstimates:     true,
		MaxTrackedMetrics:      1_000_000,
		MaxLabelPairs:          2_000_000,
		RefreshInterval:        time.Second,
		PeerSketchTTL:          30 * time.Second,
		SnapshotInterval:       5 * time.Minute,
		FailOpenDuringTransfer: true,
		NearLimitMaxSeries:     100,
		MetricsMaxTenants:      100,
		Limits:                 LimitsConfig{ExemptOwnMetrics: true},
	}
}

// RegisterFlags registers the config's flags, with prefix prepended to each
// name, on fs with DefaultConfig's values. Tenant and metric overrides and the
// exemption list are YAML-only.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.Window, prefix+"window", d.Window, "Rolling window cardinality estimates cover.")
	fs.IntVar(&c.SubWindows, prefix+"sub-windows", d.SubWindows, "Number of sub-window sketches the window is made of.")
	fs.Func(prefix+"precision", "HyperLogLog precision of series and tenant sketches (4-18).", uintFlag(&c.Precision))
	c.Precision = d.Precision
	fs.Func(prefix+"label-precision", "HyperLogLog precision of label value sketches (4-18).", uintFlag(&c.LabelPrecision))
	c.LabelPrecision = d.LabelPrecision
	fs.BoolVar(&c.LabelDropEstimates, prefix+"label-drop-estimates", d.LabelDropEstimates, "Estimate, per label name, the series a metric would have without that label (one more sketch per label name).")
	fs.IntVar(&c.MaxTrackedMetrics, prefix+"max-tracked-metrics", d.MaxTrackedMetrics, "Maximum (tenant, metric) pairs tracked per ingester.")
	fs.IntVar(&c.MaxLabelPairs, prefix+"max-label-pairs", d.MaxLabelPairs, "Maximum (tenant, metric, label) sketches tracked per ingester.")
	fs.DurationVar(&c.RefreshInterval, prefix+"refresh-interval", d.RefreshInterval, "How often tenant totals, gauges and sub-windows are refreshed.")
	fs.DurationVar(&c.PeerSketchTTL, prefix+"peer-sketch-ttl", d.PeerSketchTTL, "How long a peer's tenant sketch counts without being refreshed.")
	fs.StringVar(&c.SnapshotPath, prefix+"snapshot-path", d.SnapshotPath, "File cardinality state is snapshotted to; empty disables persistence.")
	fs.DurationVar(&c.SnapshotInterval, prefix+"snapshot-interval", d.SnapshotInterval, "How often cardinality state is snapshotted.")
	fs.BoolVar(&c.FailOpenDuringTransfer, prefix+"fail-open-during-transfer", d.FailOpenDuringTransfer, "Admit series that would be refused while ring-change state is transferred.")
	fs.IntVar(&c.NearLimitMaxSeries, prefix+"near-limit-max-series", d.NearLimitMaxSeries, "Maximum near-limit gauge series exported.")
	fs.IntVar(&c.MetricsMaxTenants, prefix+"metrics-max-tenants", d.MetricsMaxTenants, "Tenants that get their own series in per-tenant self-metrics; later tenants are counted as tenant=\"__other__\".")
	c.Limits.RegisterFlags(prefix+"limits.", fs)
}

func uintFlag(dst *uint8) func(string) error {
	return func(s string) error {
		var v uint
		if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v > 255 {
			return fmt.Errorf("want an integer 4-18, got %q", s)
		}
		*dst = uint8(v)
		return nil
	}
}

// Validate reports the first invalid field, naming it and the fix.
func (c *Config) Validate() error {
	switch {
	case c.Window <= 0:
		return errors.New("window: must be positive, e.g. 1h")
	case c.SubWindows < 1 || c.SubWindows > 60:
		return errors.New("sub_windows: must be between 1 and 60, e.g. 6")
	case c.Window/time.Duration(c.SubWindows) < time.Second:
		return errors.New("sub_windows: window/sub_windows must be at least 1s; lower sub_windows or raise window")
	case c.Precision < 4 || c.Precision > 18:
		return fmt.Errorf("precision: %d out of range, use 4-18 (14 is the default)", c.Precision)
	case c.LabelPrecision < 4 || c.LabelPrecision > 18:
		return fmt.Errorf("label_precision: %d out of range, use 4-18 (12 is the default)", c.LabelPrecision)
	case c.MaxTrackedMetrics <= 0:
		return errors.New("max_tracked_metrics: must be positive, e.g. 1000000")
	case c.MaxLabelPairs < 0:
		return errors.New("max_label_pairs: must be zero (track no labels) or positive, e.g. 2000000")
	case c.RefreshInterval <= 0:
		return errors.New("refresh_interval: must be positive, e.g. 1s")
	case c.PeerSketchTTL <= 0:
		return errors.New("peer_sketch_ttl: must be positive, e.g. 30s")
	case c.SnapshotPath != "" && c.SnapshotInterval <= 0:
		return errors.New("snapshot_interval: must be positive when snapshot_path is set, e.g. 5m")
	case c.NearLimitMaxSeries < 0:
		return errors.New("near_limit_max_series: must not be negative, e.g. 100")
	case c.MetricsMaxTenants < 0:
		return errors.New("metrics_max_tenants: must not be negative, e.g. 100")
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	return nil
}

func (c *Config) subWindow() time.Duration { return c.Window / time.Duration(c.SubWindows) }

// withoutPrecision is the precision of label-drop sketches.
func (c *Config) withoutPrecision() uint8 { return withoutPrecision(c.Precision, c.LabelPrecision) }

// withoutPrecision picks the label-drop sketches' precision from the series
// and label precisions: the series precision. A without sketch counts
// series, and SeriesWithout is compared with Series: at the same precision
// both stay in the sparse representation (near exact) up to the same count
// (2^p distinct series) and carry the same relative error beyond, so a
// label whose drop merges nothing does not look like it saves 1-2 % of the
// series between 2^label_precision and 2^precision series.
func withoutPrecision(p, _ uint8) uint8 { return p }
