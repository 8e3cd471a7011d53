package rules

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestManagerReload(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var logs bytes.Buffer
	m := NewManager(slog.New(slog.NewTextHandler(&logs, nil)), reg)
	clock := time.Unix(1700000000, 0)
	m.now = func() time.Time { return clock }

	s := series(t, "t", `debug_x`, "")
	require.Equal(t, Kept, m.Apply(s, nil).Action, "empty ruleset before the first reload")
	initial := m.Active()

	good, err := LoadConfig([]byte("rules:\n- name: drop-debug\n  relabel_configs: [{source_labels: [__name__], regex: 'debug_.*', action: drop}]\n"))
	require.NoError(t, err)
	require.NoError(t, m.Reload(good))
	active := m.Active()
	require.NotEqual(t, initial.Hash, active.Hash)
	require.Equal(t, clock, active.LoadedAt)
	require.Equal(t, Dropped, m.Apply(s, nil).Action)
	require.Equal(t, 1.0, testutil.ToFloat64(m.rulesActive))
	require.Contains(t, logs.String(), "rules config reloaded")

	// An invalid config is rejected and the previous ruleset stays active.
	bad := good
	bad.Rules = append(bad.Rules, RuleConfig{Name: "broken"})
	err = m.Reload(bad)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.Same(t, active, m.Active())
	require.Equal(t, Dropped, m.Apply(s, nil).Action)
	require.Contains(t, logs.String(), "keeping the previous ruleset")

	// Reloading the same config keeps the hash.
	require.NoError(t, m.Reload(good))
	require.Equal(t, active.Hash, m.Active().Hash)
}

func TestManagerForgetsRemovedRules(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewManager(nil, reg)
	cfg, err := LoadConfig([]byte("rules:\n- {name: old, action: warn, naming: {snake_case: true}}\n- {name: kept, action: warn, naming: {charset: legacy}}\n"))
	require.NoError(t, err)
	require.NoError(t, m.Reload(cfg))
	m.Apply(series(t, "", `{__name__="Bad.Name"}`, ""), nil)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Metrics().series.WithLabelValues("old", "warn", "enforce")))

	cfg.Rules = cfg.Rules[1:]
	require.NoError(t, m.Reload(cfg))
	n, err := testutil.GatherAndCount(reg, "promgov_rule_series_total")
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the remaining rule is exported")
}

func TestManagerReloadFile(t *testing.T) {
	m := NewManager(nil, nil)
	path := filepath.Join(t.TempDir(), "promgov.yaml")
	require.NoError(t, os.WriteFile(path, []byte("rules:\n- {name: a, action: drop, labels: {required: [team]}}\n"), 0o600))
	require.NoError(t, m.ReloadFile(path))
	require.Equal(t, 1, m.Active().Engine.Len())

	require.NoError(t, os.WriteFile(path, []byte("rules: [\n"), 0o600))
	require.ErrorIs(t, m.ReloadFile(path), ErrInvalidConfig)
	require.Equal(t, 1, m.Active().Engine.Len())
	require.ErrorIs(t, m.ReloadFile(filepath.Join(t.TempDir(), "nope.yaml")), os.ErrNotExist)
}

func TestManagerConcurrentReloadAndApply(t *testing.T) {
	m := NewManager(nil, prometheus.NewRegistry())
	a, err := LoadConfig([]byte("rules:\n- name: drop-debug\n  relabel_configs: [{source_labels: [__name__], regex: 'debug_.*', action: drop}]\n"))
	require.NoError(t, err)
	b, err := LoadConfigFile("testdata/realistic.yaml")
	require.NoError(t, err)
	require.NoError(t, m.Reload(a))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			cfg := a
			if i%2 == 1 {
				cfg = b
			}
			if err := m.Reload(cfg); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	s := series(t, "t", `debug_x{job="a"}`, "")
	for {
		select {
		case <-done:
			require.Equal(t, Dropped, m.Apply(s, nil).Action)
			return
		default:
			require.Equal(t, Dropped, m.Apply(s, nil).Action)
		}
	}
}
