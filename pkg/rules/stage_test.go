package rules

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStageKinds builds every built-in kind through the registry from a
// rule's configuration and evaluates its Stage directly: the interface the
// engine drives is the one a new kind implements.
func TestStageKinds(t *testing.T) {
	cases := map[string]struct {
		rule       string // one rule, YAML
		series     string
		typ        string
		wantAction Action
		wantLabels string // for rewrite and tag
		wantReason string
	}{
		"relabel drop": {
			rule:   `{name: r, relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]}`,
			series: `debug_x{job="a"}`, wantAction: ActionDrop, wantReason: "relabel_configs[0]",
		},
		"relabel rewrite": {
			rule:   `{name: r, relabel_configs: [{target_label: env, replacement: prod}]}`,
			series: `up{job="a"}`, wantAction: ActionRewrite, wantLabels: `up{env="prod", job="a"}`,
		},
		"relabel untouched": {
			rule:   `{name: r, relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]}`,
			series: `up{job="a"}`,
		},
		"naming rewrite": {
			rule:   `{name: n, action: rewrite, naming: {required_prefixes: [acme_]}}`,
			series: `up{job="a"}`, wantAction: ActionRewrite, wantLabels: `acme_up{job="a"}`,
		},
		"naming type unknown": {
			rule:   `{name: n, action: warn, naming: {type_suffixes: true}}`,
			series: `requests{job="a"}`, wantAction: "",
		},
		"labels tag": {
			rule:   `{name: l, action: tag, labels: {required: [team]}}`,
			series: `up{job="a"}`, wantAction: ActionTag, wantLabels: `up{governance_violation="l", job="a"}`,
		},
		"labels rewrite": {
			rule:   `{name: l, action: rewrite, labels: {forbidden: [pod]}}`,
			series: `up{job="a", pod="p"}`, wantAction: ActionRewrite, wantLabels: `up{job="a"}`,
		},
		"limits drop": {
			rule:   `{name: m, action: drop, limits: {max_labels: 2}}`,
			series: `up{job="a", pod="p"}`, wantAction: ActionDrop, wantReason: "3 labels",
		},
		"deprecated drop": {
			rule:   `{name: d, action: drop, deprecated: {prefixes: [old_client_], use: "new_client_*"}}`,
			series: `old_client_requests_total{job="a"}`, wantAction: ActionDrop,
			wantReason: "metric old_client_requests_total is deprecated (prefix old_client_); use new_client_*",
		},
		"deprecated untouched": {
			rule:   `{name: d, action: drop, deprecated: {prefixes: [old_client_]}}`,
			series: `new_client_requests_total{job="a"}`,
		},
	}
	reg := NewRegistry()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadConfig([]byte("rules:\n  - " + tc.rule + "\n"))
			require.NoError(t, err)
			require.NoError(t, cfg.Validate())
			rc := &cfg.Rules[0]
			kind, _ := rc.Kind()
			k, ok := reg.Kind(kind)
			require.True(t, ok, kind)
			scheme, _ := cfg.Scheme()
			st, err := k.New(rc, StageEnv{Scheme: scheme, TagLabel: cfg.DefaultTag()})
			require.NoError(t, err)
			s := series(t, "team-a", tc.series, tc.typ)
			v := st.Eval(&StageInput{Tenant: s.Tenant, Labels: s.Labels, Meta: s.Meta, WantLabels: true, Builder: newScratch().lb})
			require.Equal(t, tc.wantAction, v.Action, v.Reason)
			if tc.wantLabels != "" {
				require.Equal(t, mustLabels(t, tc.wantLabels), v.Labels)
			}
			if tc.wantReason != "" {
				require.Contains(t, v.Reason, tc.wantReason)
			}
			// The same through a compiled engine.
			e, err := Compile(cfg, nil)
			require.NoError(t, err)
			defer e.Close(context.Background())
			res := e.Apply(s, nil)
			switch tc.wantAction {
			case "", ActionWarn:
				require.Equal(t, Kept, res.Action)
			case ActionDrop:
				require.Equal(t, Dropped, res.Action)
			default:
				require.Equal(t, Changed, res.Action)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	reg := NewRegistry()
	for _, k := range []string{KindRelabel, KindNaming, KindLabels, KindLimits, KindPlugin, KindDeprecated, KindUnused} {
		_, ok := reg.Kind(k)
		require.True(t, ok, k)
	}
	require.ErrorContains(t, reg.Register(StageKind{Name: KindNaming, New: newNamingStage, Actions: ruleAction}), "already registered")
	require.ErrorContains(t, reg.Register(StageKind{Name: "x"}), "Name, New and Actions are required")

	// A kind the configuration names but the registry lacks is refused
	// when compiling, naming it.
	cfg, err := LoadConfig([]byte("rules:\n  - {name: d, action: drop, deprecated: {prefixes: [x_]}}\n"))
	require.NoError(t, err)
	_, err = CompileWith(cfg, nil, &Registry{kinds: map[string]StageKind{}})
	require.ErrorContains(t, err, `kind "deprecated" is not registered in this build`)
}
