package integration

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadFlagsExitTwo runs the real binaries with bad flags and bad
// configuration and expects exit code 2 and a message naming the problem.
func TestBadFlagsExitTwo(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	for name, tc := range map[string]struct {
		bin     string
		args    []string
		wantMsg string
	}{
		"distributor unknown flag": {"distributor", []string{"--nope"}, "nope"},
		"ingester without backend": {"ingester", nil, "backend.url"},
		"ingester bad protocol":    {"ingester", []string{"--backend.url=http://127.0.0.1:1/api/v1/write", "--backend.protocol=7"}, "protocol"},
		"missing config file":      {"distributor", []string{"--config.file=/nonexistent.yml"}, "config.file"},
		"unknown name scheme":      {"distributor", []string{"--distributor.name-validation-scheme=ascii"}, `name_validation_scheme must be "utf8" or "legacy", got "ascii"`},
		"missing identities file":  {"distributor", []string{"--auth.config-file=/nonexistent.yml"}, "auth.config_file"},
		"missing web config file":  {"distributor", []string{"--web.config.file=/nonexistent.yml"}, "web.config_file"},
		"gRPC cert without key":    {"ingester", []string{"--backend.url=http://127.0.0.1:1/api/v1/write", "--grpc.tls-cert-path=/x.crt"}, "tls_key_path"},
		"client TLS files, no TLS": {"distributor", []string{"--ingester.client.tls-ca-path=/ca.crt"}, "tls-enabled"},
		"negative rate limit":      {"distributor", []string{"--rate-limit.samples-per-second=-1"}, "rate_limits.samples_per_second"},
		"gossip rotation only":     {"distributor", []string{"--memberlist.encryption-rotation-key-files=/k"}, "encryption_key_file"},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(filepath.Join(binDir, tc.bin), tc.args...).CombinedOutput()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "want a non-zero exit, got %v: %s", err, out)
			require.Equal(t, 2, ee.ExitCode(), "%s", out)
			require.Contains(t, string(out), tc.wantMsg)
		})
	}
}
