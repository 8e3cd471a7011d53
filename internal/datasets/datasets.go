// Package datasets locates the real-world test inputs that live beside a
// checkout in ../shared/datasets (absent from a user's clone, so tests that
// need them skip with a message saying where they were looked for).
package datasets

import (
	"os"
	"path/filepath"
	"testing"
)

// MixinsDir returns ../shared/datasets/mixins next to the module root (the
// nearest directory above the working directory that holds go.mod), or skips
// the test when it is absent.
func MixinsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("go.mod not found above the test's directory")
		}
		dir = parent
	}
	m := filepath.Join(filepath.Dir(dir), "shared", "datasets", "mixins")
	if _, err := os.Stat(m); err != nil {
		t.Skipf("mixins dataset not found at %s (expected ../shared/datasets/mixins next to the repository): %v", m, err)
	}
	return m
}
