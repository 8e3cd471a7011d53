package govstore

import (
	"fmt"

	"github.com/pmezard/go-difflib/difflib"
)

// MaxDiffLines bounds each side of a diff.
const MaxDiffLines = 20000

// Diff is a unified diff of two YAML bodies, labelled from and to. It
// refuses inputs over MaxDiffLines lines a side rather than spend
// unbounded time.
func Diff(from, to []byte, fromLabel, toLabel string) (string, error) {
	a, b := difflib.SplitLines(string(from)), difflib.SplitLines(string(to))
	if len(a) > MaxDiffLines || len(b) > MaxDiffLines {
		return "", fmt.Errorf("diff: over %d lines a side", MaxDiffLines)
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: a, B: b, FromFile: fromLabel, ToFile: toLabel, Context: 3})
}
