package wal

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestConfigRegisterFlagsDefaults(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags("wal.", fs)
	require.Equal(t, DefaultConfig(), cfg)
	require.NoError(t, cfg.Validate())

	require.NoError(t, fs.Parse([]string{
		"--wal.dir=/tmp/x", "--wal.segment-size-bytes=8192", "--wal.sync-policy=interval",
		"--wal.sync-interval=250ms", "--wal.max-size-bytes=65536", "--wal.max-age=1m",
		"--wal.overflow-policy=drop_oldest", "--wal.preallocate=false",
	}))
	require.Equal(t, Config{
		Dir: "/tmp/x", SegmentSize: 8192, SyncPolicy: SyncInterval, SyncInterval: 250 * time.Millisecond,
		MaxSizeBytes: 65536, MaxAge: time.Minute, OverflowPolicy: OverflowDropOldest,
	}, cfg)
	require.NoError(t, cfg.Validate())
}

func TestConfigYAML(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, yaml.Unmarshal([]byte("dir: /data/wal\nmax_size_bytes: 1073741824\nmax_age: 30m\noverflow_policy: drop_oldest\n"), &cfg))
	require.Equal(t, "/data/wal", cfg.Dir)
	require.Equal(t, int64(1<<30), cfg.MaxSizeBytes)
	require.Equal(t, 30*time.Minute, cfg.MaxAge)
	require.Equal(t, OverflowDropOldest, cfg.OverflowPolicy)
	require.Equal(t, SyncGroup, cfg.SyncPolicy)
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mod     func(*Config)
		wantErr string
	}{
		"defaults":            {mod: func(*Config) {}},
		"unbounded":           {mod: func(c *Config) { c.MaxSizeBytes, c.MaxAge = 0, 0 }},
		"empty dir":           {mod: func(c *Config) { c.Dir = "" }, wantErr: "dir:"},
		"tiny segment":        {mod: func(c *Config) { c.SegmentSize = 100 }, wantErr: "segment_size_bytes:"},
		"unknown sync policy": {mod: func(c *Config) { c.SyncPolicy = "sometimes" }, wantErr: "sync_policy:"},
		"interval without period": {
			mod:     func(c *Config) { c.SyncPolicy, c.SyncInterval = SyncInterval, 0 },
			wantErr: "sync_interval:",
		},
		"negative max size": {mod: func(c *Config) { c.MaxSizeBytes = -1 }, wantErr: "max_size_bytes:"},
		"max size below two segments": {
			mod:     func(c *Config) { c.MaxSizeBytes = c.SegmentSize },
			wantErr: "max_size_bytes:",
		},
		"negative max age": {mod: func(c *Config) { c.MaxAge = -time.Second }, wantErr: "max_age:"},
		"unknown overflow": {mod: func(c *Config) { c.OverflowPolicy = "panic" }, wantErr: "overflow_policy:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
