package config

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/forward"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "promgov.yml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "backend:\n  url: http://file:9090/api/v1/write\n  protocol: 1\nforward:\n  max_shards: 7\n")
	cfg, err := ParseIngester([]string{"--config.file=" + file, "--backend.protocol=2"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "http://file:9090/api/v1/write", cfg.Backend.URL, "file overrides the default")
	require.Equal(t, 2, cfg.Backend.Protocol, "a flag overrides the file")
	require.Equal(t, 7, cfg.Forward.MaxShards)
	require.Equal(t, forward.DefaultMaxSamplesPerSend, cfg.Forward.MaxSamplesPerSend, "defaults survive for fields the file omits")
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
	cfg, err := ParseIngester([]string{"--config.file=" + file}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Len(t, cfg.Backends, 2)
	require.Equal(t, filepath.Join(filepath.Dir(file), "secrets/mimir"), cfg.Backends[0].HTTP.BasicAuth.PasswordFile,
		"relative to the configuration file")
	require.Equal(t, "/etc/ca.pem", cfg.Backends[0].HTTP.TLSConfig.CAFile)
	require.Equal(t, 2, cfg.Backends[0].Protocol, "defaults apply to every entry")
	require.Equal(t, 1, cfg.Backends[1].Protocol)
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := ParseIngester([]string{"-h"}, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "acknowledged only after it is in the write-ahead log")
	require.Contains(t, out.String(), "-wal.sync-policy")
	require.Contains(t, out.String(), "-backend.url")
}

// TestIngesterCheckConfig: an ingester checks its own sections and the
// names of the distributor's, not their content.
func TestIngesterCheckConfig(t *testing.T) {
	good := writeFile(t, "backend: {url: http://p:9090/api/v1/write}\nrules: [{name: x, action: explode}]\n")
	bad := writeFile(t, "wal: {sync_policy: bogus}\n")
	noURL := writeFile(t, "wal: {sync_policy: always}\n")
	typo := writeFile(t, "backend: {url: http://p:9090/api/v1/write}\nrulez: []\n")
	var out bytes.Buffer
	require.NoError(t, IngesterCheckConfigCommand([]string{good, noURL}, &out))
	require.Equal(t, "SUCCESS "+good+": valid for ingesters (distributor sections: run distributor check-config)\n"+
		"SUCCESS "+noURL+": valid for ingesters (distributor sections: run distributor check-config)\n  note: "+NoteNoBackendURL+"\n", out.String())

	for _, f := range []string{bad, typo} {
		out.Reset()
		err := IngesterCheckConfigCommand([]string{good, f}, &out)
		var ue *UsageError
		require.ErrorAs(t, err, &ue, "an invalid file exits with code 2")
		require.Contains(t, out.String(), "FAILED "+f+": as an ingester loads it")
	}
	require.Contains(t, out.String(), "line 2: field rulez not found")

	out.Reset()
	var ue *UsageError
	require.ErrorAs(t, IngesterCheckConfigCommand(nil, &out), &ue)
	require.Contains(t, out.String(), "Usage: ingester check-config FILE...")
}

func TestLogFormat(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"logfmt by default": {nil, `level=INFO msg=hello k=v`},
		"json":              {[]string{"--log.format=json"}, `"level":"INFO","msg":"hello","k":"v"}`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseIngester(append(tc.args, "--backend.url=http://p:9090/api/v1/write"), &bytes.Buffer{})
			require.NoError(t, err)
			var out bytes.Buffer
			logger, level := NewLogger(&cfg.Common, &out)
			logger.Info("hello", "k", "v")
			logger.Debug("hidden")
			level.Set(slog.LevelDebug)
			logger.Debug("shown")
			require.Contains(t, out.String(), tc.want)
			require.NotContains(t, out.String(), "hidden")
			require.Contains(t, out.String(), "shown", "the level can change at run time")
		})
	}
}
