package rules

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestReloadFromAndHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewManager(nil, reg)
	good, err := LoadConfig([]byte("rules:\n  - name: a\n    action: warn\n    naming: {snake_case: true}\n"))
	require.NoError(t, err)
	var next func() (Config, error)
	h := ReloadHandler(func() error { return m.ReloadFrom(next) })
	gauge := func() float64 {
		v, err := testutil.GatherAndCount(reg, "promgov_config_last_reload_successful")
		require.NoError(t, err)
		require.Equal(t, 1, v)
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "promgov_config_last_reload_successful" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	for _, step := range []struct {
		name      string
		load      func() (Config, error)
		wantCode  int
		wantGauge float64
		wantRules int
	}{
		{"valid config becomes active", func() (Config, error) { return good, nil }, http.StatusOK, 1, 1},
		{"unreadable config keeps the old rules", func() (Config, error) { return Config{}, errors.New("read promgov.yml: no such file") }, http.StatusBadRequest, 0, 1},
		{"invalid config keeps the old rules", func() (Config, error) {
			bad := good
			bad.Rules = []RuleConfig{{Name: "x", Action: "explode", Naming: &NamingConfig{SnakeCase: true}}}
			return bad, nil
		}, http.StatusBadRequest, 0, 1},
		{"valid again", func() (Config, error) { return DefaultConfig(), nil }, http.StatusOK, 1, 0},
	} {
		next = step.load
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
		require.Equal(t, step.wantCode, w.Code, "%s: %s", step.name, w.Body.String())
		require.Equal(t, step.wantGauge, gauge(), step.name)
		require.Equal(t, step.wantRules, m.Active().Engine.Len(), step.name)
		if step.wantCode != http.StatusOK {
			require.Contains(t, w.Body.String(), "failed to reload config: ", step.name)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/-/reload", nil))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
}
