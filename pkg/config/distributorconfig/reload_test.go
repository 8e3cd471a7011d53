package distributorconfig

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/config"
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
	type testCase struct {
		ingester    func(*config.IngesterConfig)
		distributor func(*Config)
		want        []string
	}
	for name, tc := range map[string]testCase{
		"ingester: limits and log level reload": {ingester: func(c *config.IngesterConfig) {
			c.Cardinality.Limits.Defaults.MaxSeriesPerMetric = 5
			c.Cardinality.Limits.Exempt = []string{"up"}
			c.LogLevel = "debug"
		}},
		"ingester: the WAL and the window need a restart": {ingester: func(c *config.IngesterConfig) {
			c.WAL.SyncPolicy = "always"
			c.Cardinality.Window = 30 * 60e9
			c.Cardinality.Limits.Defaults.MaxSeriesPerMetric = 5
		}, want: []string{"wal.sync_policy", "cardinality.window"}},
		"ingester: backends need a restart": {ingester: func(c *config.IngesterConfig) {
			c.Backends = append(c.Backends, forward.BackendConfig{Name: "b", URL: "http://b/w",
				WriteRelabelConfigs: []*relabel.Config{{Action: relabel.Drop}}})
		}, want: []string{"backends"}},
		"ingester: aggregation rules and their bounds reload": {ingester: func(c *config.IngesterConfig) {
			c.Aggregate.Rules = append(c.Aggregate.Rules, aggregate.RuleConfig{Name: "a", Match: "m", By: []string{"svc"}, Interval: model.Duration(time.Minute)})
			c.Aggregate.MaxGroups = 7
			c.Aggregate.OverflowInterval = model.Duration(time.Minute)
			c.Aggregate.OverflowMaxDelay = model.Duration(time.Second)
		}},
		"ingester: the aggregation snapshot path needs a restart": {ingester: func(c *config.IngesterConfig) {
			c.Aggregate.SnapshotPath = "/elsewhere"
		}, want: []string{"aggregations_snapshot_path"}},
		"distributor: aggregation rules reload (rules test API)": {distributor: func(c *Config) {
			c.Aggregate.Rules = append(c.Aggregate.Rules, aggregate.RuleConfig{Name: "a", Match: "m", By: []string{"svc"}, Interval: model.Duration(time.Minute)})
			c.Aggregate.SnapshotPath = "/elsewhere" // not the distributor's
		}},
		"ingester: distributor sections are not its business": {ingester: func(c *config.IngesterConfig) {
			c.Other["rules"] = yaml.Node{Kind: yaml.SequenceNode}
			c.Usage.DropUnused.Mode = "enforce"
			c.Distributor.Other = config.Foreign{"default_tenant": yaml.Node{Kind: yaml.ScalarNode, Value: "x"}}
		}},
		"distributor: rules, usage sources and policy reload": {distributor: func(c *Config) {
			c.Rules.Rules = nil
			c.Usage.DropUnused.Mode = "enforce"
			c.Usage.Dashboards.Paths = []string{"/x"}
		}},
		"distributor: the tap and the listen address need a restart": {distributor: func(c *Config) {
			c.Usage.Queries.BackendURL = "http://p:9090"
			c.Web.ListenAddress = ":1"
			c.Rules.TypeCacheSize = 7
		}, want: []string{"web.listen_address", "rules_type_cache_size", "usage.queries.backend_url"}},
		"distributor: ingester sections are not its business": {distributor: func(c *Config) {
			c.Other["wal"] = yaml.Node{Kind: yaml.MappingNode}
			c.Other["backend"] = yaml.Node{Kind: yaml.MappingNode}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			file := writeFile(t, base)
			args := []string{"--config.file=" + file}
			var running, next config.Binary
			var edit func()
			if tc.ingester != nil {
				r, err := config.ParseIngester(args, &bytes.Buffer{})
				require.NoError(t, err)
				n, err := config.ParseIngester(args, &bytes.Buffer{})
				require.NoError(t, err)
				running, next, edit = r, n, func() { tc.ingester(n) }
			} else {
				r, err := Parse(args, &bytes.Buffer{})
				require.NoError(t, err)
				n, err := Parse(args, &bytes.Buffer{})
				require.NoError(t, err)
				running, next, edit = r, n, func() { tc.distributor(n) }
			}
			require.Empty(t, config.RestartFields(running, next), "an unchanged file needs nothing")
			edit()
			require.ElementsMatch(t, tc.want, config.RestartFields(running, next))
		})
	}
}
