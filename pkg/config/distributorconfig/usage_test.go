package distributorconfig

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/config"
	"github.com/promgov/promgov/pkg/usage"
)

func TestUsageSection(t *testing.T) {
	file := writeFile(t, `
usage:
  reload_interval: 1m
  dashboards:
    paths: [/etc/dashboards]
  queries:
    backend_url: http://prometheus:9090
  drop_unused:
    mode: shadow
    grace_period: 720h
    deny: ["up"]
`)
	cfg, err := Parse([]string{"--config.file=" + file, "--usage.drop-unused.mode=enforce"}, &bytes.Buffer{})
	require.NoError(t, err)
	u := cfg.Usage
	require.Equal(t, time.Minute, u.ReloadInterval)
	require.Equal(t, time.Minute, u.LoadTimeout, "defaults survive for fields the file omits")
	require.Equal(t, []string{"/etc/dashboards"}, u.Dashboards.Paths)
	require.Equal(t, "http://prometheus:9090", u.Queries.BackendURL)
	require.Equal(t, "X-Grafana-User", u.Queries.UserHeader)
	require.Equal(t, usage.ModeEnforce, u.DropUnused.Mode, "a flag overrides the file")
	require.Equal(t, 720*time.Hour, u.DropUnused.GracePeriod)
	require.Equal(t, []string{"up"}, u.DropUnused.Deny)

	cfg, err = Parse([]string{"--query.backend-url=http://b:9090"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "http://b:9090", cfg.Usage.Queries.BackendURL)

	for name, tc := range map[string]struct {
		yaml, want string
	}{
		"bad mode":       {"usage:\n  drop_unused:\n    mode: loud\n", "usage.drop_unused.mode"},
		"no grace":       {"usage:\n  drop_unused:\n    mode: enforce\n    grace_period: 0s\n", "usage.drop_unused.grace_period"},
		"bad backend":    {"usage:\n  queries:\n    backend_url: prometheus:9090\n", "usage.queries.backend_url"},
		"bad deny regex": {"usage:\n  drop_unused:\n    deny: ['(']\n", "usage.drop_unused.deny[0]"},
		"unknown field":  {"usage:\n  dashboard:\n    paths: [x]\n", "dashboard"},
	} {
		t.Run(name, func(t *testing.T) {
			f := writeFile(t, tc.yaml)
			_, err := Parse([]string{"--config.file=" + f}, &bytes.Buffer{})
			var ue *config.UsageError
			require.True(t, errors.As(err, &ue), "want a UsageError, got %v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
