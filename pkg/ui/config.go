package ui

import (
	"errors"
	"flag"
	"time"
)

// Config configures the UI.
type Config struct {
	// Enabled serves the UI at / (on by default).
	Enabled bool `yaml:"enabled"`
	// HistoryInterval is how often History samples the top metrics.
	HistoryInterval time.Duration `yaml:"history_interval"`
	// HistoryMetrics is how many metrics (by series) History keeps.
	HistoryMetrics int `yaml:"history_metrics"`
	// HistoryPoints is how many points History keeps per series.
	HistoryPoints int `yaml:"history_points"`
	// SnapshotInterval is how often the ranked snapshot of every metric's
	// estimates, which the pages read, is refreshed.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
}

// DefaultConfig is the configuration without flags: one hour of history
// at 30s for the 200 biggest metrics, and pages at most 15s (30s when a
// refresh is late) behind the tracker.
func DefaultConfig() Config {
	return Config{Enabled: true, HistoryInterval: 30 * time.Second, HistoryMetrics: 200, HistoryPoints: 120, SnapshotInterval: 15 * time.Second}
}

// RegisterFlags registers the flags under prefix (the binaries use "ui.").
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.BoolVar(&c.Enabled, prefix+"enabled", d.Enabled, "Serve the web UI at / (the ring page stays at /ring).")
	fs.DurationVar(&c.HistoryInterval, prefix+"history-interval", d.HistoryInterval, "How often the UI samples the biggest metrics for its charts.")
	fs.IntVar(&c.HistoryMetrics, prefix+"history-metrics", d.HistoryMetrics, "How many metrics (the biggest by series) the UI keeps a history of.")
	fs.DurationVar(&c.SnapshotInterval, prefix+"snapshot-interval", d.SnapshotInterval, "How often the UI re-reads every metric's estimates into the ranked snapshot its pages read (pages are at most twice this behind).")
	fs.IntVar(&c.HistoryPoints, prefix+"history-points", d.HistoryPoints, "How many points of history the UI keeps per metric (history-interval x history-points is the span).")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.HistoryInterval < time.Second {
		return errors.New("ui.history_interval: must be at least 1s; the default is 30s")
	}
	if c.HistoryMetrics < 1 || c.HistoryMetrics > 10000 {
		return errors.New("ui.history_metrics: must be between 1 and 10000; the default is 200")
	}
	if c.HistoryPoints < 2 || c.HistoryPoints > 10000 {
		return errors.New("ui.history_points: must be between 2 and 10000; the default is 120")
	}
	if c.SnapshotInterval < time.Second {
		return errors.New("ui.snapshot_interval: must be at least 1s; the default is 15s")
	}
	return nil
}
