package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocsExamples loads every rules example of docs/rules.md and runs its
// unit test example against the relabel and labels examples.
func TestDocsExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/rules.md")
	if os.IsNotExist(err) {
		t.Skip("docs/rules.md not present")
	}
	require.NoError(t, err)
	var ruleBlocks []string
	var unitTest string
	for _, b := range strings.Split(string(data), "```yaml\n")[1:] {
		b = b[:strings.Index(b, "```")]
		switch {
		case strings.HasPrefix(b, "rules:"):
			// The plugin example names the installed path of the
			// requireteam example: build it and load it from here.
			doc := strings.ReplaceAll(b, "/etc/promgov/plugins/requireteam.wasm",
				plugins.Build(t, "../../examples/plugins/requireteam"))
			cfg, err := LoadConfig([]byte(doc))
			require.NoError(t, err, b)
			// As a distributor compiles them: with a usage analysis for
			// the unused kind.
			m := NewManager(nil, nil)
			u := &usageSet{}
			u.set()
			m.SetUsagePolicy(u)
			require.NoError(t, m.Reload(cfg), b)
			require.NoError(t, m.Close(t.Context()))
			ruleBlocks = append(ruleBlocks, b)
		case strings.HasPrefix(b, "# rules_test.yaml"):
			unitTest = b
		}
	}
	require.Len(t, ruleBlocks, 7, "one example per rule kind")
	require.NotEmpty(t, unitTest)

	dir := t.TempDir()
	// The relabel and labels examples together form promgov.yaml.
	combined := ruleBlocks[0] + strings.TrimPrefix(ruleBlocks[2], "rules:\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "promgov.yaml"), []byte(combined), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules_test.yaml"), []byte(unitTest), 0o600))
	rep, err := RunTests(filepath.Join(dir, "rules_test.yaml"))
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
}
