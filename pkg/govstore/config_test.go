package govstore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		var c Config
		c.RegisterFlags("governance.", flag.NewFlagSet("t", flag.ContinueOnError))
		c.Backend, c.Filesystem.Directory = BackendFilesystem, t.TempDir()
		return c
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string // "" valid
	}{
		"defaults": {mod: func(*Config) {}},
		"auto_propose on": {mod: func(c *Config) {
			c.AutoPropose.Interval, c.AutoPropose.Kinds = time.Hour, []string{"drop_metrics", "aggregation"}
		}},
		"auto_propose unknown kind": {mod: func(c *Config) { c.AutoPropose.Kinds = []string{"drop_everything"} }, want: `governance.auto_propose.kinds: "drop_everything" is not a suggestion kind`},
		"auto_propose negative":     {mod: func(c *Config) { c.AutoPropose.Interval = -time.Second }, want: "governance.auto_propose.interval"},
		"auto_propose none per run": {mod: func(c *Config) {
			c.AutoPropose.Interval, c.AutoPropose.Kinds, c.AutoPropose.MaxPerRun = time.Hour, []string{"labeldrop"}, 0
		}, want: "governance.auto_propose.max_per_run"},
		"auto_rollback over 1": {mod: func(c *Config) { c.AutoRollback.MaxDropShare = 1.5 }, want: "governance.auto_rollback.max_drop_share"},
	} {
		t.Run(name, func(t *testing.T) {
			c := valid()
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

func TestAutoProposeKindsFlag(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags("governance.", fs)
	require.NoError(t, fs.Parse([]string{"--governance.auto-propose.kinds=drop_metrics, labeldrop", "--governance.auto-propose.interval=1h"}))
	require.Equal(t, []string{"drop_metrics", "labeldrop"}, c.AutoPropose.Kinds)
	require.True(t, c.AutoPropose.Enabled())
	require.Equal(t, 1, c.AutoPropose.MaxPerRun)
}

// TestCloudStoresConfig: the gcs and azure sections are validated in every
// build; a build without -tags cloudstores refuses to open them with the
// way out.
func TestCloudStoresConfig(t *testing.T) {
	base := func() Config {
		var c Config
		c.RegisterFlags("governance.", flag.NewFlagSet("t", flag.ContinueOnError))
		return c
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"gcs":                {mod: func(c *Config) { c.Backend, c.GCS.Bucket = BackendGCS, "b" }},
		"gcs without bucket": {mod: func(c *Config) { c.Backend = BackendGCS }, want: "governance.gcs.bucket"},
		"azure":              {mod: func(c *Config) { c.Backend, c.Azure.StorageAccount, c.Azure.Container = BackendAzure, "acct", "c" }},
		"azure without account": {mod: func(c *Config) { c.Backend, c.Azure.Container = BackendAzure, "c" },
			want: "governance.azure.storage_account"},
		"azure key and connection string": {mod: func(c *Config) {
			c.Backend, c.Azure.StorageAccount, c.Azure.Container, c.Azure.AccountKeyFile, c.Azure.ConnectionStringFile = BackendAzure, "a", "c", "k", "s"
		}, want: "keep one"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			if !CloudStores {
				_, err := c.Open()
				require.ErrorContains(t, err, "build with -tags cloudstores")
			}
		})
	}
}

// TestSeedWhenClaimsCollide: two seeders that claim version 1 at once
// both stand back; neither wrote it, so Seed says to retry (an
// unavailable error) instead of taking the store for seeded, and the
// retry seeds it.
func TestSeedWhenClaimsCollide(t *testing.T) {
	ctx := context.Background()
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	st := New(bkt)
	other := fmt.Sprintf("%s%020d/%020d-%s", dirClaims, 1, time.Now().UnixNano(), "0123456789abcdef")
	require.NoError(t, bkt.Upload(ctx, other, strings.NewReader(""))) // the other seeder's live claim

	v, err := st.Seed(ctx, []byte("rules: []\n"), "seed")
	require.Nil(t, v)
	var ue *UnavailableError
	require.ErrorAs(t, err, &ue, "nobody wrote version 1: retry")
	head, err := st.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)

	require.NoError(t, bkt.Delete(ctx, other)) // the other one stood back too
	v, err = st.Seed(ctx, []byte("rules: []\n"), "seed")
	require.NoError(t, err)
	require.EqualValues(t, 1, v.Number)
	v, err = st.Seed(ctx, []byte("rules: []\n"), "seed")
	require.NoError(t, err)
	require.Nil(t, v, "seeded already")
}

// TestWriteWhenClaimsCollide: a write whose claim on the next version
// meets another live claim is told to retry (an unavailable error), not
// that the store changed: the head did not move (the automatic rollback
// of two distributors at once stood back on a conflict, and nobody rolled
// back).
func TestWriteWhenClaimsCollide(t *testing.T) {
	ctx := context.Background()
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	st := New(bkt)
	_, err = st.Seed(ctx, []byte("rules: []\n"), "seed")
	require.NoError(t, err)
	other := fmt.Sprintf("%s%020d/%020d-%s", dirClaims, 2, time.Now().UnixNano(), "0123456789abcdef")
	require.NoError(t, bkt.Upload(ctx, other, strings.NewReader("")))

	_, err = st.Write(ctx, WriteRequest{Body: []byte("rules: []\n"), IfMatch: 1, Author: "a"})
	var ue *UnavailableError
	require.ErrorAs(t, err, &ue)
	var ce *ConflictError
	require.False(t, errors.As(err, &ce), "not a conflict: the head is still 1")

	require.NoError(t, bkt.Delete(ctx, other))
	v, err := st.Write(ctx, WriteRequest{Body: []byte("rules: []\n"), IfMatch: 1, Author: "a"})
	require.NoError(t, err)
	require.EqualValues(t, 2, v.Number)
}
