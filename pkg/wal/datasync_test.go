package wal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOSFileDatasync: the operating system's File makes written data
// durable with Datasync, and a failure names the operation and the file.
func TestOSFileDatasync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "00000001")
	f, err := OSFS{}.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	_, err = f.Write([]byte("record"))
	require.NoError(t, err)
	require.NoError(t, f.Datasync())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "record", string(got))

	require.NoError(t, f.Close())
	err = f.Datasync()
	require.ErrorIs(t, err, os.ErrClosed)
	require.Contains(t, err.Error(), "fdatasync "+path)
}
