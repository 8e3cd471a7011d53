package config

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/forward"
)

// TestRestartFields: a reload applies the fields listed in
// ReloadableFields and names every other changed field the binary reads
// as needing a restart; fields the binary does not read are not named.
func TestRestartFields(t *testing.T) {
	const base = `
backend: {url: http://p:9090/api/v1/write}
cardinality:
  window: 1h
  limits:
    defaults: {max_series_per_metric: 100}
rules:
  - name: drop-debug
    relabel_configs: [{source_labels: [__name__], regex: 'debug_.*', action: drop}]
usage:
  drop_unused: {mode: shadow}
`
	for name, tc := range map[string]struct {
		role Role
		edit func(*Config)
		want []string
	}{
		"ingester: limits and log level reload": {role: RoleIngester, edit: func(c *Config) {
			c.Cardinality.Limits.Defaults.MaxSeriesPerMetric = 5
			c.Cardinality.Limits.Exempt = []string{"up"}
			c.LogLevel = "debug"
		}},
		"ingester: the WAL and the window need a restart": {role: RoleIngester, edit: func(c *Config) {
			c.WAL.SyncPolicy = "always"
			c.Cardinality.Window = 30 * 60e9
			c.Cardinality.Limits.Defaults.MaxSeriesPerMetric = 5
		}, want: []string{"wal.sync_policy", "cardinality.window"}},
		"ingester: backends need a restart": {role: RoleIngester, edit: func(c *Config) {
			c.Backends = append(c.Backends, forward.BackendConfig{Name: "b", URL: "http://b/w",
				WriteRelabelConfigs: []*relabel.Config{{Action: relabel.Drop}}})
		}, want: []string{"backends"}},
		"ingester: aggregation rules and their bounds reload": {role: RoleIngester, edit: func(c *Config) {
			c.Aggregate.Rules = append(c.Aggregate.Rules, aggregate.RuleConfig{Name: "a", Match: "m", By: []string{"svc"}, Interval: model.Duration(time.Minute)})
			c.Aggregate.MaxGroups = 7
			c.Aggregate.OverflowInterval = model.Duration(time.Minute)
			c.Aggregate.OverflowMaxDelay = model.Duration(time.Second)
		}},
		"ingester: the aggregation snapshot path needs a restart": {role: RoleIngester, edit: func(c *Config) {
			c.Aggregate.SnapshotPath = "/elsewhere"
		}, want: []string{"aggregations_snapshot_path"}},
		"distributor: aggregation rules reload (rules test API)": {role: RoleDistributor, edit: func(c *Config) {
			c.Aggregate.Rules = append(c.Aggregate.Rules, aggregate.RuleConfig{Name: "a", Match: "m", By: []string{"svc"}, Interval: model.Duration(time.Minute)})
			c.Aggregate.SnapshotPath = "/elsewhere" // not the distributor's
		}},
		"ingester: distributor sections are not its business": {role: RoleIngester, edit: func(c *Config) {
			c.Rules.Rules = nil
			c.Usage.DropUnused.Mode = "enforce"
			c.Distributor.RemoteWrite.DefaultTenant = "x"
		}},
		"distributor: rules, usage sources and policy reload": {role: RoleDistributor, edit: func(c *Config) {
			c.Rules.Rules = nil
			c.Usage.DropUnused.Mode = "enforce"
			c.Usage.Dashboards.Paths = []string{"/x"}
		}},
		"distributor: the tap and the listen address need a restart": {role: RoleDistributor, edit: func(c *Config) {
			c.Usage.Queries.BackendURL = "http://p:9090"
			c.Web.ListenAddress = ":1"
			c.Rules.TypeCacheSize = 7
		}, want: []string{"web.listen_address", "rules_type_cache_size", "usage.queries.backend_url"}},
		"distributor: ingester sections are not its business": {role: RoleDistributor, edit: func(c *Config) {
			c.WAL.SyncPolicy = "always"
			c.Backend.URL = "http://q/api/v1/write"
		}},
	} {
		t.Run(name, func(t *testing.T) {
			file := writeFile(t, base)
			running, err := Parse(tc.role, []string{"--config.file=" + file}, &bytes.Buffer{})
			require.NoError(t, err)
			next, err := Parse(tc.role, []string{"--config.file=" + file}, &bytes.Buffer{})
			require.NoError(t, err)
			require.Empty(t, RestartFields(tc.role, running, next), "an unchanged file needs nothing")
			tc.edit(next)
			require.ElementsMatch(t, tc.want, RestartFields(tc.role, running, next))
		})
	}
}
