package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVersion prints the version without reading the configuration (a
// missing file is not an error) and exits 0.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"--version", "--config.file=/nonexistent.yml"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "distributor, version ")
	require.Contains(t, stdout.String(), "go version:")
	require.Empty(t, stderr.String())
}
