package distributorconfig

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/promgov/promgov/pkg/config"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// parse parses args as role's binary does.
func parse(role config.Role, args []string, stderr io.Writer) (config.Binary, error) {
	if role == config.RoleIngester {
		return config.ParseIngester(args, stderr)
	}
	return Parse(args, stderr)
}

func TestExampleConfigIsValidForBothBinaries(t *testing.T) {
	for _, role := range []config.Role{config.RoleDistributor, config.RoleIngester} {
		t.Run(string(role), func(t *testing.T) {
			cfg, err := parse(role, []string{"--config.file=../../../deploy/promgov.yml"}, &bytes.Buffer{})
			require.NoError(t, err)
			require.Equal(t, 271, cfg.Base().Memberlist.PartitionCount)
		})
	}
}

func TestBadInputIsAUsageError(t *testing.T) {
	for name, tc := range map[string]struct {
		role    config.Role
		args    []string
		file    string
		wantMsg string
	}{
		"unknown flag":           {config.RoleDistributor, []string{"--no.such-flag"}, "", "no.such-flag"},
		"stray argument":         {config.RoleDistributor, []string{"oops"}, "", "unexpected arguments"},
		"missing backend url":    {config.RoleIngester, nil, "", "backend.url"},
		"bad protocol":           {config.RoleIngester, []string{"--backend.url=http://x/api/v1/write", "--backend.protocol=3"}, "", "protocol"},
		"unknown yaml field":     {config.RoleDistributor, nil, "distributor:\n  max_compresed_bytes: 1\n", "max_compresed_bytes"},
		"bad log level":          {config.RoleDistributor, []string{"--log.level=loud"}, "", "log_level"},
		"bad listen address":     {config.RoleDistributor, []string{"--web.listen-address=nonsense"}, "", "web.listen_address"},
		"missing config file":    {config.RoleDistributor, []string{"--config.file=/does/not/exist.yml"}, "", "config.file"},
		"yaml of the wrong type": {config.RoleDistributor, nil, "distributor: [1, 2]\n", "parse configuration file"},
		"backend and backends":   {config.RoleIngester, []string{"--backend.url=http://x/api/v1/write"}, "backends: [{name: a, url: http://a/w}]\n", "backend.url and backends are both set"},
		"backends typo":          {config.RoleIngester, nil, "backends: [{name: a, url: http://a/w, basic_auth: {pasword: x}}]\n", "pasword"},
		"write relabel invalid":  {config.RoleIngester, nil, "backends: [{name: a, url: http://a/w}, {name: b, url: http://b/w, write_relabel_configs: [{action: drop}, {action: replace}]}]\n", "backends[1].write_relabel_configs[1]: relabel configuration for replace action requires 'target_label' value"},
		"forward split negative": {config.RoleIngester, []string{"--backend.url=http://x/api/v1/write", "--forward.max-split-requests=-1"}, "", "forward.max_split_requests"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config.file="+writeFile(t, tc.file))
			}
			_, err := parse(tc.role, args, &bytes.Buffer{})
			var ue *config.UsageError
			require.True(t, errors.As(err, &ue), "want a UsageError, got %v", err)
			require.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	b, err := os.ReadFile("../../../deploy/promgov.yml")
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte("memberlist: {join: [a:1]}\n"))
	f.Add([]byte("forward: {max_shards: -1}\n"))
	f.Add([]byte("backends: [{name: a, url: 'https://a/w', basic_auth: {username: u, password_file: p}, tls_config: {ca_file: c}, headers: {X-A: b}}, {name: b, url: 'http://b/w', oauth2: {client_id: x, token_url: 'http://t'}}]\n"))
	f.Add([]byte("backend: {url: 'http://a/w', authorization: {credentials: t}, proxy_url: 'http://p:1'}\n"))
	f.Add([]byte("backends: [{name: a, url: 'http://a/w', write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}, {regex: pod, action: labeldrop}]}]\n"))
	f.Add([]byte("forward: {max_split_requests: 0}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cfg := range []config.Binary{&Config{}, &config.IngesterConfig{}} {
			if config.Unmarshal(data, cfg) == nil {
				_ = config.Validate(cfg) // must not panic
			}
		}
	})
}

// TestVersionFlag: --version wins over everything else, the configuration
// file included (it is not read), for both binaries.
func TestVersionFlag(t *testing.T) {
	for _, role := range []config.Role{config.RoleDistributor, config.RoleIngester} {
		t.Run(string(role), func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parse(role, []string{"--config.file=/nonexistent.yml", "--version", "--log.level=loud"}, &stderr)
			require.ErrorIs(t, err, config.ErrVersion)
			require.Empty(t, stderr.String())
		})
	}
}

// TestSectionLists pins config.DistributorSections and
// config.IngesterSections to the two configuration types: each binary
// accepts by name exactly the sections only the other one decodes.
func TestSectionLists(t *testing.T) {
	dist, ing := yamlKeys(reflect.TypeFor[Config]()), yamlKeys(reflect.TypeFor[config.IngesterConfig]())
	var onlyDist, onlyIng []string
	for k := range dist {
		if !ing[k] {
			onlyDist = append(onlyDist, k)
		}
	}
	for k := range ing {
		if !dist[k] {
			onlyIng = append(onlyIng, k)
		}
	}
	require.ElementsMatch(t, onlyDist, config.DistributorSections)
	require.ElementsMatch(t, onlyIng, config.IngesterSections)
}

// yamlKeys returns the top-level YAML keys a struct type decodes (inline
// structs included, the inline map of foreign sections not).
func yamlKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
			maps.Copy(out, yamlKeys(f.Type))
		case strings.Contains(opts, "inline"):
		default:
			out[name] = true
		}
	}
	return out
}

// TestOneFileServesBoth: every section of one binary is accepted by the
// other, which does not decode it.
func TestOneFileServesBoth(t *testing.T) {
	file := writeFile(t, `
backend: {url: http://p:9090/api/v1/write}
wal: {dir: /tmp/wal}
cardinality: {limits: {defaults: {max_series_per_metric: 10}}}
ingester: {leave_drain_period: 1s}
forward: {max_shards: 3}
distributor: {tenant_header: X-Tenant, push_timeout: 3s}
rate_limits: {}
rules: [{name: drop-debug, relabel_configs: [{source_labels: [__name__], regex: 'debug_.*', action: drop}]}]
rules_type_cache_size: 10
`)
	d, err := Parse([]string{"--config.file=" + file}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Len(t, d.Rules.Rules, 1)
	require.Equal(t, "X-Tenant", d.Distributor.RemoteWrite.TenantHeader)
	i, err := config.ParseIngester([]string{"--config.file=" + file}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 3, i.Forward.MaxShards)
	require.Equal(t, "X-Tenant", i.TenantHeader(), "the ingester's APIs read the cluster's tenant header")
}
