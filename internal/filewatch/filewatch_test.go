package filewatch

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCache: the value is rebuilt only after a file changed and the
// interval passed; a failed rebuild keeps the last good value and is
// retried.
func TestCache(t *testing.T) {
	f := filepath.Join(t.TempDir(), "v")
	require.NoError(t, os.WriteFile(f, []byte("1"), 0o600))
	loads := 0
	c, err := New(time.Second, func() (string, []string, error) {
		loads++
		b, err := os.ReadFile(f)
		if err == nil && string(b) == "bad" {
			err = errors.New("bad content")
		}
		return string(b), []string{f}, err
	})
	require.NoError(t, err)
	now := time.Now()
	c.now = func() time.Time { return now }
	get := func() (string, error) { return c.Get() }

	v, err := get()
	require.NoError(t, err)
	require.Equal(t, "1", v)

	touch := func(content string, at time.Time) {
		require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
		require.NoError(t, os.Chtimes(f, at, at))
	}
	touch("2", now.Add(time.Hour))
	v, _ = get()
	require.Equal(t, "1", v, "not checked again within the interval")
	now = now.Add(2 * time.Second)
	v, err = get()
	require.NoError(t, err)
	require.Equal(t, "2", v)
	require.Equal(t, 2, loads)

	now = now.Add(2 * time.Second)
	_, _ = get()
	require.Equal(t, 2, loads, "unchanged files are not reloaded")

	touch("bad", now.Add(2*time.Hour))
	now = now.Add(2 * time.Second)
	v, err = get()
	require.ErrorContains(t, err, "bad content")
	require.Equal(t, "2", v, "the last good value serves on")

	touch("3", now.Add(3*time.Hour))
	now = now.Add(2 * time.Second)
	v, err = get()
	require.NoError(t, err)
	require.Equal(t, "3", v)
}
