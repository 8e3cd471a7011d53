package cluster

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfig(t *testing.T) {
	tests := map[string]struct {
		mut  func(*Config)
		want string
	}{
		"defaults":        {func(*Config) {}, ""},
		"sync interval":   {func(c *Config) { c.SyncInterval = 0 }, "sync_interval"},
		"sync timeout":    {func(c *Config) { c.SyncTimeout = -1 }, "sync_timeout"},
		"settle negative": {func(c *Config) { c.HandoffSettle = -time.Second }, "handoff_settle"},
		"settle off":      {func(c *Config) { c.HandoffSettle = 0 }, ""},
		"handoff timeout": {func(c *Config) { c.HandoffTimeout = 0 }, "handoff_timeout"},
		"query timeout":   {func(c *Config) { c.QueryTimeout = 0 }, "query_timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags("cluster.", fs)
	require.Equal(t, DefaultConfig(), c)
	require.NoError(t, fs.Parse([]string{"-cluster.sync-interval=7s"}))
	require.Equal(t, 7*time.Second, c.SyncInterval)
}
