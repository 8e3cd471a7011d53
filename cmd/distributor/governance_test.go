package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
)

func TestWithUsageDrop(t *testing.T) {
	base := rules.Config{Rules: []rules.RuleConfig{{Name: "r", Action: rules.ActionDrop, Deprecated: &rules.DeprecatedConfig{Prefixes: []string{"x_"}}}}}
	for name, tc := range map[string]struct {
		mode     string
		wantMode rules.Mode // "": no rule appended
	}{
		"off":     {mode: usage.ModeOff},
		"unset":   {mode: ""},
		"shadow":  {mode: usage.ModeShadow, wantMode: rules.ModeShadow},
		"enforce": {mode: usage.ModeEnforce, wantMode: rules.ModeEnforce},
	} {
		t.Run(name, func(t *testing.T) {
			got := withUsageDrop(base, usage.DropConfig{Mode: tc.mode})
			if tc.wantMode == "" {
				require.Equal(t, base, got)
				return
			}
			require.Len(t, got.Rules, 2)
			last := got.Rules[1]
			require.Equal(t, rules.UsageDropRuleName, last.Name)
			require.Equal(t, tc.wantMode, last.Mode)
			require.Equal(t, rules.ActionDrop, last.Action)
			require.NotNil(t, last.Unused)
			require.NoError(t, got.Validate())
			require.Len(t, base.Rules, 1, "the configured rules were changed")
		})
	}
}
