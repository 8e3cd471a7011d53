package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the values table of deploy/helm/promgov/README.md")

const (
	readmePath   = "helm/promgov/README.md"
	valuesPath   = "helm/promgov/values.yaml"
	tableStart   = "<!-- values table: generated from values.yaml by `go test ./deploy/ -run TestChartREADME -args -update` -->"
	tableEnd     = "<!-- end of values table -->"
	maxDefault   = 60 // longer defaults are left to values.yaml
	docDelimiter = "# -- "
)

// TestChartREADME checks that the README's values table is the one
// values.yaml's "# --" comments give; -update rewrites it.
func TestChartREADME(t *testing.T) {
	values, err := os.ReadFile(valuesPath)
	require.NoError(t, err)
	table, err := valuesTable(values)
	require.NoError(t, err)
	readme, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	before, rest, ok := strings.Cut(string(readme), tableStart)
	require.True(t, ok, "README.md lacks the line %s", tableStart)
	_, after, ok := strings.Cut(rest, tableEnd)
	require.True(t, ok, "README.md lacks the line %s", tableEnd)
	want := before + tableStart + "\n" + table + tableEnd + after
	if *update {
		require.NoError(t, os.WriteFile(readmePath, []byte(want), 0o644))
		return
	}
	require.Equal(t, want, string(readme), "the values table is stale: run go test ./deploy/ -run TestChartREADME -args -update")
}

// TestValuesAreDocumented: every leaf setting a user may change has a
// "# --" comment (on itself or on the map it belongs to).
func TestValuesAreDocumented(t *testing.T) {
	values, err := os.ReadFile(valuesPath)
	require.NoError(t, err)
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(values, &root))
	var undocumented []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			switch {
			case docOf(k) != "": // documents everything below it
			case v.Kind == yaml.MappingNode && len(v.Content) > 0:
				walk(v, p)
			default:
				undocumented = append(undocumented, p)
			}
		}
	}
	walk(root.Content[0], "")
	require.Empty(t, undocumented, "values without a \"# --\" comment")
}

// valuesTable renders the documented keys of values.yaml as a Markdown
// table: key, type, default, description.
func valuesTable(values []byte) (string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(values, &root); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	var walk func(n *yaml.Node, path string) error
	walk = func(n *yaml.Node, path string) error {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			if doc := docOf(k); doc != "" {
				def, err := defaultOf(v)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", p, typeOf(v), def, strings.ReplaceAll(doc, "|", `\|`))
				continue
			}
			if v.Kind == yaml.MappingNode {
				if err := walk(v, p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root.Content[0], ""); err != nil {
		return "", err
	}
	return b.String(), nil
}

// docOf returns the "# -- " comment above a key, continuation lines joined.
func docOf(k *yaml.Node) string {
	lines := strings.Split(k.HeadComment, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, docDelimiter) {
			continue
		}
		doc := []string{strings.TrimPrefix(l, docDelimiter)}
		for _, c := range lines[i+1:] {
			doc = append(doc, strings.TrimSpace(strings.TrimPrefix(c, "#")))
		}
		return strings.Join(doc, " ")
	}
	return ""
}

func typeOf(v *yaml.Node) string {
	switch {
	case v.Kind == yaml.SequenceNode:
		return "list"
	case v.Kind == yaml.MappingNode:
		return "object"
	case v.Tag == "!!int":
		return "int"
	case v.Tag == "!!bool":
		return "bool"
	case v.Tag == "!!float":
		return "float"
	}
	return "string"
}

// defaultOf renders a value as compact JSON in backquotes, or points at
// values.yaml when it is long.
func defaultOf(v *yaml.Node) (string, error) {
	var val any
	if err := v.Decode(&val); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(val); err != nil {
		return "", err
	}
	s := strings.TrimSpace(buf.String())
	if len(s) > maxDefault {
		return "see values.yaml", nil
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`", nil
}
