package rules

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig([]byte(`
distributor: {listen: ":8080"}   # other sections are ignored
ingester: [1, 2]
rules_tag_label: policy_violation
rules:
  - name: a
    relabel_configs: [{source_labels: [__name__], regex: "x", action: drop}]
  - name: b
    mode: shadow
    action: warn
    scope: {tenants: [t1], selector: '{job=~"api.*"}'}
    naming: {snake_case: true}
`))
	require.NoError(t, err)
	require.Len(t, cfg.Rules, 2)
	require.Equal(t, "policy_violation", cfg.TagLabel)
	require.Equal(t, DefaultTypeCacheSize, cfg.TypeCacheSize)
	require.Equal(t, int64(DefaultTestMaxBodyBytes), cfg.TestMaxBodyBytes)
	require.Equal(t, DefaultNameValidationScheme, cfg.NameValidationScheme)
	require.Equal(t, ModeShadow, cfg.Rules[1].Mode)

	empty, err := LoadConfig(nil)
	require.NoError(t, err)
	require.Empty(t, empty.Rules)
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]struct {
		doc  string
		want string
	}{
		"not yaml":              {`rules: [`, "parse yaml"},
		"unknown field":         {"rules:\n- name: a\n  nmae: x\n  naming: {snake_case: true}\n  action: warn", "field nmae not found"},
		"unknown relabel act":   {"rules:\n- name: a\n  relabel_configs: [{action: explode}]", "unknown relabel action"},
		"missing name":          {"rules:\n- action: warn\n  naming: {snake_case: true}", "rules[0].name: required"},
		"duplicate name":        {"rules:\n- {name: a, action: warn, naming: {snake_case: true}}\n- {name: a, action: warn, naming: {snake_case: true}}", `rules[1].name: "a" is already used`},
		"no kind":               {"rules:\n- name: a", "set exactly one of"},
		"two kinds":             {"rules:\n- {name: a, action: warn, naming: {snake_case: true}, limits: {max_labels: 3}}", "found 2"},
		"bad mode":              {"rules:\n- {name: a, mode: loud, action: warn, naming: {snake_case: true}}", ".mode: unknown mode"},
		"missing action":        {"rules:\n- {name: a, naming: {snake_case: true}}", ".action: required for naming rules"},
		"bad action":            {"rules:\n- {name: a, action: nuke, naming: {snake_case: true}}", `unknown action "nuke"`},
		"relabel with action":   {"rules:\n- {name: a, action: drop, relabel_configs: [{source_labels: [a], regex: x, action: drop}]}", "relabel rules take no action"},
		"relabel invalid":       {"rules:\n- {name: a, relabel_configs: [{action: hashmod, source_labels: [a], target_label: b}]}", "requires non-zero modulus"},
		"relabel null":          {"rules:\n- {name: a, relabel_configs: [null]}", "empty entry"},
		"bad selector":          {"rules:\n- {name: a, scope: {selector: '{job=~'}, action: warn, naming: {snake_case: true}}", ".scope.selector"},
		"empty tenant":          {"rules:\n- {name: a, scope: {tenants: ['']}, action: warn, naming: {snake_case: true}}", "scope.tenants[0]"},
		"bad charset":           {"rules:\n- {name: a, action: warn, naming: {charset: ascii}}", `unknown charset "ascii"`},
		"naming nothing":        {"rules:\n- {name: a, action: warn, naming: {}}", "no check enabled"},
		"rewrite discouraged":   {"rules:\n- {name: a, action: rewrite, naming: {discouraged_units: [milliseconds]}}", "cannot be fixed by action rewrite"},
		"rewrite required":      {"rules:\n- {name: a, action: rewrite, labels: {required: [team]}}", "a missing label cannot be fixed"},
		"rewrite max labels":    {"rules:\n- {name: a, action: rewrite, limits: {max_labels: 3}}", "cannot be fixed by action rewrite"},
		"normalize no labels":   {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{lowercase: true}]}}", "normalize[0].labels: required"},
		"normalize name":        {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [__name__], lowercase: true}]}}", "__name__ cannot be normalised"},
		"normalize bad regex":   {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [a], regex: '('}]}}", "normalize[0].regex"},
		"normalize repl only":   {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [a], replacement: x}]}}", "replacement: set without regex"},
		"normalize builtin":     {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [a], builtin: [guid]}]}}", `unknown normaliser "guid"`},
		"normalize nothing":     {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [a]}]}}", "no step enabled"},
		"hash too short":        {"rules:\n- {name: a, action: rewrite, labels: {normalize: [{labels: [a], max_length: 5, overflow: hash}]}}", "must be at least 18"},
		"bad overflow":          {"rules:\n- {name: a, action: rewrite, limits: {max_label_value_length: 50, value_overflow: chop}}", `unknown overflow "chop"`},
		"limits nothing":        {"rules:\n- {name: a, action: drop, limits: {}}", "no limit set"},
		"negative limit":        {"rules:\n- {name: a, action: drop, limits: {max_labels: -1}}", "must not be negative"},
		"bad label name":        {"rules:\n- {name: a, action: drop, labels: {forbidden: ['']}}", "forbidden[0]"},
		"bad scheme":            {"rules_name_validation_scheme: ascii", "rules_name_validation_scheme: unknown scheme"},
		"bad tag label":         {"rules_name_validation_scheme: legacy\nrules:\n- {name: a, action: tag, tag_label: bad-name, naming: {snake_case: true}}", "tag_label"},
		"negative cache":        {"rules_type_cache_size: -1", "rules_type_cache_size: must not be negative"},
		"rules not a list":      {"rules: {name: a}", "cannot unmarshal"},
		"legacy bad relabel ln": {"rules_name_validation_scheme: legacy\nrules:\n- {name: a, relabel_configs: [{source_labels: [a], target_label: 'bad-name'}]}", "invalid 'target_label'"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig([]byte(c.doc))
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestConfigRegisterFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags("distributor.", fs)
	require.Equal(t, "utf8", fs.Lookup("distributor.rules.name-validation-scheme").DefValue)
	require.Equal(t, "100000", fs.Lookup("distributor.rules.type-cache-size").DefValue)
	require.NoError(t, fs.Parse([]string{"-distributor.rules.name-validation-scheme=legacy", "-distributor.rules.tag-label=violation"}))
	require.Equal(t, "legacy", cfg.NameValidationScheme)
	require.Equal(t, "violation", cfg.TagLabel)
	require.NoError(t, cfg.Validate())
	cfg.NameValidationScheme = "x"
	require.ErrorContains(t, cfg.Validate(), "rules_name_validation_scheme")
}

func TestLoadConfigFile(t *testing.T) {
	_, err := LoadConfigFile(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	n, err := CheckConfigFile("testdata/realistic.yaml")
	require.NoError(t, err)
	require.Equal(t, 20, n)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n- name: a\n"), 0o600))
	_, err = CheckConfigFile(bad)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, bad)
}

func TestConfigHashStable(t *testing.T) {
	a, err := LoadConfigFile("testdata/realistic.yaml")
	require.NoError(t, err)
	b, err := LoadConfigFile("testdata/realistic.yaml")
	require.NoError(t, err)
	ha, err := configHash(a)
	require.NoError(t, err)
	hb, err := configHash(b)
	require.NoError(t, err)
	require.Equal(t, ha, hb)
	b.Rules = b.Rules[1:]
	hc, err := configHash(b)
	require.NoError(t, err)
	require.NotEqual(t, ha, hc)
}
