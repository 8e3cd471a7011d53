package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestExampleConfigIsValidForBothBinaries(t *testing.T) {
	for _, role := range []Role{RoleDistributor, RoleIngester} {
		t.Run(string(role), func(t *testing.T) {
			cfg, err := Parse(role, []string{"--config.file=../../deploy/promgov.yml"}, &bytes.Buffer{})
			require.NoError(t, err)
			require.Equal(t, 271, cfg.Memberlist.PartitionCount)
		})
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "backend:\n  url: http://file:9090/api/v1/write\n  protocol: 1\nforward:\n  max_shards: 7\n")
	cfg, err := Parse(RoleIngester, []string{"--config.file=" + file, "--backend.protocol=2"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "http://file:9090/api/v1/write", cfg.Backend.URL, "file overrides the default")
	require.Equal(t, 2, cfg.Backend.Protocol, "a flag overrides the file")
	require.Equal(t, 7, cfg.Forward.MaxShards)
	require.Equal(t, 2000, cfg.Forward.MaxSamplesPerSend, "defaults survive for fields the file omits")
}

func TestBackendsFromFile(t *testing.T) {
	file := writeFile(t, `
backends:
  - name: mimir
    url: https://mimir:8080/api/v1/push
    basic_auth: {username: promgov, password_file: secrets/mimir}
    tls_config: {ca_file: /etc/ca.pem}
  - name: vm
    url: http://vm:8428/api/v1/write
    protocol: 1
`)
	cfg, err := Parse(RoleIngester, []string{"--config.file=" + file}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Len(t, cfg.Backends, 2)
	require.Equal(t, filepath.Join(filepath.Dir(file), "secrets/mimir"), cfg.Backends[0].HTTP.BasicAuth.PasswordFile,
		"relative to the configuration file")
	require.Equal(t, "/etc/ca.pem", cfg.Backends[0].HTTP.TLSConfig.CAFile)
	require.Equal(t, 2, cfg.Backends[0].Protocol, "defaults apply to every entry")
	require.Equal(t, 1, cfg.Backends[1].Protocol)
}

func TestBadInputIsAUsageError(t *testing.T) {
	for name, tc := range map[string]struct {
		role    Role
		args    []string
		file    string
		wantMsg string
	}{
		"unknown flag":           {RoleDistributor, []string{"--no.such-flag"}, "", "no.such-flag"},
		"stray argument":         {RoleDistributor, []string{"oops"}, "", "unexpected arguments"},
		"missing backend url":    {RoleIngester, nil, "", "backend.url"},
		"bad protocol":           {RoleIngester, []string{"--backend.url=http://x/api/v1/write", "--backend.protocol=3"}, "", "protocol"},
		"unknown yaml field":     {RoleDistributor, nil, "distributor:\n  max_compresed_bytes: 1\n", "max_compresed_bytes"},
		"bad log level":          {RoleDistributor, []string{"--log.level=loud"}, "", "log_level"},
		"bad listen address":     {RoleDistributor, []string{"--web.listen-address=nonsense"}, "", "web.listen_address"},
		"missing config file":    {RoleDistributor, []string{"--config.file=/does/not/exist.yml"}, "", "config.file"},
		"yaml of the wrong type": {RoleDistributor, nil, "distributor: [1, 2]\n", "parse configuration file"},
		"backend and backends":   {RoleIngester, []string{"--backend.url=http://x/api/v1/write"}, "backends: [{name: a, url: http://a/w}]\n", "backend.url and backends are both set"},
		"backends typo":          {RoleIngester, nil, "backends: [{name: a, url: http://a/w, basic_auth: {pasword: x}}]\n", "pasword"},
		"write relabel invalid":  {RoleIngester, nil, "backends: [{name: a, url: http://a/w}, {name: b, url: http://b/w, write_relabel_configs: [{action: drop}, {action: replace}]}]\n", "backends[1].write_relabel_configs[1]: relabel configuration for replace action requires 'target_label' value"},
		"forward split negative": {RoleIngester, []string{"--backend.url=http://x/api/v1/write", "--forward.max-split-requests=-1"}, "", "forward.max_split_requests"},
	} {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config.file="+writeFile(t, tc.file))
			}
			_, err := Parse(tc.role, args, &bytes.Buffer{})
			var ue *UsageError
			require.True(t, errors.As(err, &ue), "want a UsageError, got %v", err)
			require.Contains(t, err.Error(), tc.wantMsg)
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse(RoleIngester, []string{"-h"}, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "acknowledged only after it is in the write-ahead log")
	require.Contains(t, out.String(), "-wal.sync-policy")
	require.Contains(t, out.String(), "-backend.url")
}

func FuzzUnmarshal(f *testing.F) {
	b, err := os.ReadFile("../../deploy/promgov.yml")
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte("memberlist: {join: [a:1]}\n"))
	f.Add([]byte("forward: {max_shards: -1}\n"))
	f.Add([]byte("backends: [{name: a, url: 'https://a/w', basic_auth: {username: u, password_file: p}, tls_config: {ca_file: c}, headers: {X-A: b}}, {name: b, url: 'http://b/w', oauth2: {client_id: x, token_url: 'http://t'}}]\n"))
	f.Add([]byte("backend: {url: 'http://a/w', authorization: {credentials: t}, proxy_url: 'http://p:1'}\n"))
	f.Add([]byte("backends: [{name: a, url: 'http://a/w', write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}, {regex: pod, action: labeldrop}]}]\n"))
	f.Add([]byte("forward: {max_split_requests: 0}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, role := range []Role{RoleDistributor, RoleIngester} {
			var cfg Config
			if Unmarshal(data, &cfg) == nil {
				_ = cfg.Validate(role) // must not panic
			}
		}
	})
}

// TestVersionFlag: --version wins over everything else, the configuration
// file included (it is not read), for both binaries.
func TestVersionFlag(t *testing.T) {
	for _, role := range []Role{RoleDistributor, RoleIngester} {
		t.Run(string(role), func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := Parse(role, []string{"--config.file=/nonexistent.yml", "--version", "--log.level=loud"}, &stderr)
			require.ErrorIs(t, err, ErrVersion)
			require.Empty(t, stderr.String())
		})
	}
}
