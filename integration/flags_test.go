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
