package rules

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunTestsRealistic(t *testing.T) {
	rep, err := RunTests("testdata/realistic_test.yaml")
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, 20, rep.Rules)
	require.Len(t, rep.Groups, 5)
	require.Contains(t, rep.String(), "SUCCESS")
}

func TestRunTestsReportsFailures(t *testing.T) {
	rep, err := RunTests("testdata/inline_test.yaml")
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Equal(t, 1, rep.Failed())
	require.Empty(t, rep.Groups[0].Failures)
	f := rep.Groups[1].Failures
	require.Len(t, f, 1)
	require.Contains(t, f[0], "action: got changed, want dropped")
	require.Contains(t, f[0], `rule: got "counters", want "other"`)
	require.Contains(t, f[0], "reason: got")
	require.Contains(t, f[0], "trace:")
	out := rep.String()
	require.Contains(t, out, "PASS untyped counters are tagged")
	require.Contains(t, out, "FAIL a failing test")
	require.Contains(t, out, "FAILED: 1 of 2 tests")
}

func TestRunTestsInvalidFiles(t *testing.T) {
	cases := map[string]struct {
		content string
		want    string
		is      error
	}{
		"not yaml":          {"tests: [", "parse yaml", ErrInvalidTestFile},
		"unknown field":     {"tests: []\nfoo: 1", "field foo not found", ErrInvalidTestFile},
		"no tests":          {"rules: []", "no tests", ErrInvalidTestFile},
		"both rule kinds":   {"rule_files: [a.yaml]\nrules: [{name: a}]\ntests: [{name: x, series: [{input: a, expect: {action: kept}}]}]", "not both", ErrInvalidTestFile},
		"no expectation":    {"tests: [{name: x, series: [{input: a}]}]", "set action or output", ErrInvalidTestFile},
		"bad action":        {"tests: [{name: x, series: [{input: a, expect: {action: gone}}]}]", "use kept, changed or dropped", ErrInvalidTestFile},
		"dropped output":    {"tests: [{name: x, series: [{input: a, expect: {action: dropped, output: a}}]}]", "has no output", ErrInvalidTestFile},
		"bad input":         {"tests: [{name: x, series: [{input: 'a{', expect: {action: kept}}]}]", "series[0].input", ErrInvalidTestFile},
		"bad type":          {"tests: [{name: x, series: [{input: a, type: countr, expect: {action: kept}}]}]", "unknown metric type", ErrInvalidTestFile},
		"missing rule file": {"rule_files: [nope.yaml]\ntests: [{name: x, series: [{input: a, expect: {action: kept}}]}]", "nope.yaml", os.ErrNotExist},
		"invalid rules":     {"rules: [{name: a}]\ntests: [{name: x, series: [{input: a, expect: {action: kept}}]}]", "set exactly one of", ErrInvalidConfig},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.yaml")
			require.NoError(t, os.WriteFile(path, []byte(c.content), 0o600))
			_, err := RunTests(path)
			require.ErrorIs(t, err, c.is)
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := RunTests(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestRunTestsCombinesRuleFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("rules:\n- {name: a, action: drop, labels: {forbidden: [x]}}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("rules:\n- {name: a, action: drop, labels: {forbidden: [y]}}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("rules:\n- {name: c, action: drop, labels: {forbidden: [y]}}\n"), 0o600))
	tests := "tests: [{name: t, series: [{input: 'm{y=\"1\"}', expect: {action: dropped, rule: c}}]}]\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte("rule_files: [a.yaml, c.yaml]\n"+tests), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dup.yaml"), []byte("rule_files: [a.yaml, b.yaml]\n"+tests), 0o600))
	rep, err := RunTests(filepath.Join(dir, "ok.yaml"))
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	_, err = RunTests(filepath.Join(dir, "dup.yaml"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.ErrorContains(t, err, "already used")
}
