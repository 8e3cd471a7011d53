package ui

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"defaults":          {func(*Config) {}, ""},
		"disabled ignores":  {func(c *Config) { c.Enabled, c.HistoryPoints = false, 0 }, ""},
		"interval too fast": {func(c *Config) { c.HistoryInterval = time.Millisecond }, "ui.history_interval"},
		"no metrics":        {func(c *Config) { c.HistoryMetrics = 0 }, "ui.history_metrics"},
		"too many metrics":  {func(c *Config) { c.HistoryMetrics = 1_000_000 }, "ui.history_metrics"},
		"one point":         {func(c *Config) { c.HistoryPoints = 1 }, "ui.history_points"},
		"snapshot too fast": {func(c *Config) { c.SnapshotInterval = time.Millisecond }, "ui.snapshot_interval"},
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestConfigFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags("ui.", fs)
	require.Equal(t, DefaultConfig(), c)
	require.NoError(t, fs.Parse([]string{"--ui.enabled=false", "--ui.history-interval=5s", "--ui.history-metrics=10", "--ui.history-points=60", "--ui.snapshot-interval=3s"}))
	require.Equal(t, Config{Enabled: false, HistoryInterval: 5 * time.Second, HistoryMetrics: 10, HistoryPoints: 60, SnapshotInterval: 3 * time.Second}, c)
}
