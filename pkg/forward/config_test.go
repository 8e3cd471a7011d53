package forward

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigFlagsDefaults(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var cfg Config
	var backend BackendConfig
	cfg.RegisterFlags("forward.", fs)
	backend.RegisterFlags("backend.", fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, DefaultConfig(), cfg)
	require.Equal(t, DefaultBackendConfig(), backend)

	require.NoError(t, fs.Parse([]string{
		"--forward.flush-deadline=1m", "--forward.max-shards=8", "--forward.max-samples-per-send=500",
		"--backend.url=http://mimir:8080/api/v1/push", "--backend.protocol=1", "--backend.tenant-header=X-Tenant",
	}))
	require.Equal(t, time.Minute, cfg.FlushDeadline)
	require.Equal(t, 8, cfg.MaxShards)
	require.Equal(t, 1, cfg.MinShards, "shards start low")
	require.Equal(t, 500, cfg.MaxSamplesPerSend)
	require.Equal(t, "http://mimir:8080/api/v1/push", backend.URL)
	require.Equal(t, 1, backend.Protocol)
	require.Equal(t, "X-Tenant", backend.TenantHeader)
	require.NoError(t, cfg.Validate())
	require.NoError(t, backend.Validate())
}

func TestConfigYAML(t *testing.T) {
	var doc struct {
		Backend BackendConfig `yaml:"backend"`
		Forward Config        `yaml:"forward"`
	}
	doc.Backend, doc.Forward = DefaultBackendConfig(), DefaultConfig()
	require.NoError(t, yaml.Unmarshal([]byte(`
backend:
  url: http://vm:8428/api/v1/write
  protocol: 1
forward:
  min_backoff: 10ms
  max_pending_samples: 50000
`), &doc))
	require.Equal(t, "http://vm:8428/api/v1/write", doc.Backend.URL)
	require.Equal(t, 30*time.Second, doc.Backend.Timeout)
	require.Equal(t, 10*time.Millisecond, doc.Forward.MinBackoff)
	require.Equal(t, 50000, doc.Forward.MaxPendingSamples)
	require.NoError(t, doc.Backend.Validate())
	require.NoError(t, doc.Forward.Validate())
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"max samples":              {func(c *Config) { c.MaxSamplesPerSend = 0 }, "forward.max_samples_per_send"},
		"deadline":                 {func(c *Config) { c.BatchSendDeadline = 0 }, "forward.batch_send_deadline"},
		"min shards":               {func(c *Config) { c.MinShards = 0 }, "forward.min_shards"},
		"max below min shards":     {func(c *Config) { c.MinShards, c.MaxShards = 4, 2 }, "forward.max_shards"},
		"shard update interval":    {func(c *Config) { c.ShardUpdateInterval = 0 }, "forward.shard_update_interval"},
		"removed concurrency":      {func(c *Config) { c.Concurrency = 4 }, "forward.concurrency: no longer supported"},
		"min backoff":              {func(c *Config) { c.MinBackoff = 0 }, "forward.min_backoff"},
		"max below min":            {func(c *Config) { c.MaxBackoff = time.Millisecond }, "forward.max_backoff"},
		"pending too low":          {func(c *Config) { c.MaxPendingSamples = 10 }, "forward.max_pending_samples"},
		"negative flush":           {func(c *Config) { c.FlushDeadline = -1 }, "forward.flush_deadline"},
		"zero checkpoint interval": {func(c *Config) { c.CheckpointInterval = 0 }, "forward.checkpoint_interval"},
		"defaults are ok":          {func(*Config) {}, ""},
		"zero flush is ok":         {func(c *Config) { c.FlushDeadline = 0 }, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestBackendConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*BackendConfig)
		want   string
	}{
		"missing url":     {func(c *BackendConfig) { c.URL = "" }, "backend.url: required"},
		"relative url":    {func(c *BackendConfig) { c.URL = "/api/v1/write" }, "backend.url"},
		"bad scheme":      {func(c *BackendConfig) { c.URL = "ftp://x/y" }, "backend.url"},
		"bad protocol":    {func(c *BackendConfig) { c.Protocol = 3 }, "backend.protocol"},
		"zero timeout":    {func(c *BackendConfig) { c.Timeout = 0 }, "backend.timeout"},
		"ok":              {func(*BackendConfig) {}, ""},
		"no tenant is ok": {func(c *BackendConfig) { c.TenantHeader = "" }, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultBackendConfig()
			cfg.URL = "https://prom:9090/api/v1/write"
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
