package ring

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags("memberlist.", fs)
	require.Equal(t, DefaultConfig(), cfg)
	require.NoError(t, cfg.Validate())

	require.NoError(t, fs.Parse([]string{
		"-memberlist.bind-address=0.0.0.0:0",
		"-memberlist.join=a:7946, b:7946,,c:7946",
		"-memberlist.node-name=ingester-1",
		"-memberlist.partition-count=101",
		"-memberlist.gossip-interval=50ms",
	}))
	require.Equal(t, "0.0.0.0:0", cfg.BindAddress)
	require.Equal(t, []string{"a:7946", "b:7946", "c:7946"}, cfg.Join)
	require.Equal(t, "ingester-1", cfg.NodeName)
	require.Equal(t, 101, cfg.PartitionCount)
	require.Equal(t, 50*time.Millisecond, cfg.GossipInterval)
	require.Equal(t, "a:7946,b:7946,c:7946", fs.Lookup("memberlist.join").Value.String())
	require.NoError(t, cfg.Validate())
}

func TestConfigYAML(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, yaml.Unmarshal([]byte(`
bind_address: 127.0.0.1:0
join: [127.0.0.1:7946]
gossip_interval: 100ms
leave_drain_period: 2s
`), &cfg))
	require.Equal(t, []string{"127.0.0.1:7946"}, cfg.Join)
	require.Equal(t, 100*time.Millisecond, cfg.GossipInterval)
	require.Equal(t, 2*time.Second, cfg.LeaveDrainPeriod)
	require.Equal(t, 271, cfg.PartitionCount)
	require.NoError(t, cfg.Validate())
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Config)
		field  string // yaml field the error must name; empty = valid
	}{
		"defaults":                 {mutate: func(*Config) {}},
		"port zero":                {mutate: func(c *Config) { c.BindAddress = "127.0.0.1:0" }},
		"all interfaces":           {mutate: func(c *Config) { c.BindAddress = ":7946" }},
		"advertise":                {mutate: func(c *Config) { c.AdvertiseAddress = "10.0.0.1:7946" }},
		"bind without port":        {mutate: func(c *Config) { c.BindAddress = "127.0.0.1" }, field: "bind_address"},
		"bind bad port":            {mutate: func(c *Config) { c.BindAddress = "127.0.0.1:99999" }, field: "bind_address"},
		"advertise hostname":       {mutate: func(c *Config) { c.AdvertiseAddress = "node-1:7946" }, field: "advertise_address"},
		"advertise port zero":      {mutate: func(c *Config) { c.AdvertiseAddress = "10.0.0.1:0" }, field: "advertise_address"},
		"join without port":        {mutate: func(c *Config) { c.Join = []string{"node-1"} }, field: "join[0]"},
		"label too long":           {mutate: func(c *Config) { c.ClusterLabel = strings.Repeat("x", 300) }, field: "cluster_label"},
		"no partitions":            {mutate: func(c *Config) { c.PartitionCount = 0 }, field: "partition_count"},
		"load one":                 {mutate: func(c *Config) { c.Load = 1 }, field: "load"},
		"replication one":          {mutate: func(c *Config) { c.ReplicationFactor = 1 }, field: "replication_factor"},
		"gossip zero":              {mutate: func(c *Config) { c.GossipInterval = 0 }, field: "gossip_interval"},
		"probe zero":               {mutate: func(c *Config) { c.ProbeInterval = 0 }, field: "probe_interval"},
		"push pull zero":           {mutate: func(c *Config) { c.PushPullInterval = 0 }, field: "push_pull_interval"},
		"join retry zero":          {mutate: func(c *Config) { c.JoinRetryInterval = 0 }, field: "join_retry_interval"},
		"join retry max too low":   {mutate: func(c *Config) { c.JoinRetryMaxInterval = time.Millisecond }, field: "join_retry_max_interval"},
		"negative rejoin interval": {mutate: func(c *Config) { c.RejoinInterval = -time.Second }, field: "rejoin_interval"},
		"update timeout zero":      {mutate: func(c *Config) { c.UpdateTimeout = 0 }, field: "update_timeout"},
		"negative drain":           {mutate: func(c *Config) { c.LeaveDrainPeriod = -time.Second }, field: "leave_drain_period"},
		"leave timeout zero":       {mutate: func(c *Config) { c.LeaveTimeout = 0 }, field: "leave_timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "memberlist."+tc.field)
		})
	}
}
