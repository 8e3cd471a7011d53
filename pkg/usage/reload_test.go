package usage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestManagerApplyConfig: a reload keeps the health history of sources that
// stay configured, starts new ones unhealthy (which blocks dropping until
// they load), and changes the drop policy at once.
func TestManagerApplyConfig(t *testing.T) {
	e := newPolicyEnv(t, DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour})
	p := e.mgr.Policy()
	e.step(0)
	e.step(2 * time.Hour)
	require.True(t, p.Check("lonely").Drop)
	since := *e.mgr.Sources()[0].HealthySince

	tests := map[string]struct {
		drop    DropConfig
		sources []Source
		// before the next round, and after it
		wantNow, wantAfter Verdict
		wantSources        int
	}{
		"deny takes effect at once": {
			drop:      DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour, Deny: []string{"lonely"}},
			sources:   []Source{e.src},
			wantNow:   Verdict{},
			wantAfter: Verdict{},
		},
		"shadow reports, drops nothing": {
			drop:      DropConfig{Mode: ModeShadow, GracePeriod: time.Hour},
			sources:   []Source{e.src},
			wantNow:   Verdict{},
			wantAfter: Verdict{WouldDrop: true},
		},
		"the unused clock is kept across a reload": {
			drop:      DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour},
			sources:   []Source{e.src},
			wantNow:   Verdict{},
			wantAfter: Verdict{Drop: true, WouldDrop: true},
		},
		"off": {
			drop:      DropConfig{Mode: ModeOff},
			sources:   []Source{e.src},
			wantNow:   Verdict{},
			wantAfter: Verdict{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DropUnused = tc.drop
			require.NoError(t, e.mgr.ApplyConfig(cfg, tc.sources))
			require.Equal(t, tc.wantNow, p.Check("lonely"), "nothing is selected until the next round")
			e.step(time.Minute)
			require.Equal(t, tc.wantAfter, p.Check("lonely"))
			require.Equal(t, since, *e.mgr.Sources()[0].HealthySince, "a source that stays keeps its health history")
		})
	}

	t.Run("a new source blocks dropping until it has been healthy a grace period", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.DropUnused = DropConfig{Mode: ModeEnforce, GracePeriod: time.Hour}
		extra := &fakeSource{name: "rules"}
		require.NoError(t, e.mgr.ApplyConfig(cfg, []Source{e.src, extra}))
		require.Len(t, e.mgr.Sources(), 2)
		require.False(t, e.mgr.Sources()[1].Healthy)
		e.step(time.Minute)
		require.Equal(t, Verdict{}, p.Check("lonely"))
		require.Equal(t, BlockedDataTooYoung, p.Status().Reason)
		e.step(time.Hour)
		require.True(t, p.Check("lonely").Drop)
	})

	t.Run("an invalid config changes nothing", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.DropUnused = DropConfig{Mode: "sometimes"}
		require.Error(t, e.mgr.ApplyConfig(cfg, nil))
		require.Len(t, e.mgr.Sources(), 2)
		require.True(t, p.Check("lonely").Drop)
	})
}
