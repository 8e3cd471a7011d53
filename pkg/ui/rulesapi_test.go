package ui

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/rules"
)

// TestRulesAPIView pins the UI's view of the rules API to what pkg/rules
// serves: the paths, and every field a page shows survives the JSON.
func TestRulesAPIView(t *testing.T) {
	require.Equal(t, rules.PathRules, pathRules)
	require.Equal(t, rules.PathTest, pathRulesTest)

	loaded := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rc := rules.RuleConfig{Name: "no-debug", Action: rules.ActionDrop, Mode: rules.ModeShadow,
		Scope: rules.ScopeConfig{Tenants: []string{"a"}, Selector: `{job="x"}`}, Naming: &rules.NamingConfig{}}
	served := rules.RulesData{Hash: "h", LoadedAt: loaded, YAML: "rules: []\n", Rules: []rules.RuleSummary{
		{Name: rc.Name, Kind: rules.KindNaming, Mode: rc.Mode, Action: rc.Action, Scope: rc.Scope, Config: &rc},
	}}
	var got activeRules
	roundTrip(t, served, &got)
	require.Equal(t, activeRules{Hash: "h", LoadedAt: loaded, YAML: "rules: []\n", Rules: []ruleSummary{
		{Name: "no-debug", Kind: rules.KindNaming, Mode: rules.ModeShadow, Action: rules.ActionDrop, Scope: rc.Scope},
	}}, got)

	var req rules.TestRequest
	roundTrip(t, testRequest{Tenant: "a", Series: []testSeries{{Series: `up{job="x"}`}}}, &req)
	require.Equal(t, rules.TestRequest{Tenant: "a", Series: []rules.TestSeries{{Series: `up{job="x"}`}}}, req)

	answer := rules.TestResponseData{Results: []rules.TestResult{{
		Tenant: "a", Input: "debug_x", Action: rules.Dropped, Output: "o", Rule: "no-debug", Reason: "r",
		Trace: []rules.TraceStep{{Rule: "no-debug", Mode: rules.ModeEnforce, InScope: true, Matched: true, Effect: rules.EffectDropped, Reason: "r", After: "a"}},
	}}}
	var res testResponseData
	roundTrip(t, answer, &res)
	require.Equal(t, testResponseData{Results: []testResult{{
		Tenant: "a", Input: "debug_x", Action: "dropped", Output: "o", Rule: "no-debug", Reason: "r",
		Trace: []traceStep{{Rule: "no-debug", Mode: rules.ModeEnforce, InScope: true, Matched: true, Effect: "dropped", Reason: "r", After: "a"}},
	}}}, res)
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, out))
}
