package reservoir

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config bounds the reservoir. The zero SeriesPerMetric turns it off.
type Config struct {
	// SeriesPerMetric is k, the series sampled per (tenant, metric).
	SeriesPerMetric int `yaml:"series_per_metric"`
	// MaxMetrics bounds the (tenant, metric) pairs sampled; further
	// metrics are not sampled until others expire.
	MaxMetrics int `yaml:"max_metrics"`
	// MaxAge is how long a sampled series stays without being seen again.
	MaxAge time.Duration `yaml:"max_age"`
	// SampleInterval is the gate: at most one push per interval feeds the
	// reservoir (0: every push).
	SampleInterval time.Duration `yaml:"sample_interval"`
}

// DefaultConfig is 64 series per metric, 10000 metrics, 10m, one push per
// 100ms.
func DefaultConfig() Config {
	return Config{SeriesPerMetric: 64, MaxMetrics: 10000, MaxAge: 10 * time.Minute, SampleInterval: 100 * time.Millisecond}
}

// RegisterFlags registers the flags of c under prefix (e.g. "preview.reservoir.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.SeriesPerMetric, prefix+"series-per-metric", d.SeriesPerMetric, "Series an ingester samples per owned (tenant, metric) for the impact preview (0 turns sampling off).")
	fs.IntVar(&c.MaxMetrics, prefix+"max-metrics", d.MaxMetrics, "Bound on the (tenant, metric) pairs an ingester samples for the impact preview.")
	fs.DurationVar(&c.MaxAge, prefix+"max-age", d.MaxAge, "A sampled series not seen again for this long leaves the preview's sample.")
	fs.DurationVar(&c.SampleInterval, prefix+"sample-interval", d.SampleInterval, "At most one push per interval feeds the preview's sample (0: every push).")
}

// Validate reports the first invalid field, naming it and the fix.
func (c *Config) Validate() error {
	switch {
	case c.SeriesPerMetric < 0 || c.SeriesPerMetric > MaxSeriesPerMetric:
		return fmt.Errorf("series_per_metric: %d is outside 0..%d, e.g. 64", c.SeriesPerMetric, MaxSeriesPerMetric)
	case c.SeriesPerMetric > 0 && c.MaxMetrics <= 0:
		return errors.New("max_metrics: must be positive, e.g. 10000")
	case c.SeriesPerMetric > 0 && c.MaxAge <= 0:
		return errors.New("max_age: must be positive, e.g. 10m")
	case c.SampleInterval < 0:
		return errors.New("sample_interval: must not be negative, e.g. 100ms (0: every push)")
	}
	return nil
}

// MaxSeriesPerMetric bounds SeriesPerMetric.
const MaxSeriesPerMetric = 4096
