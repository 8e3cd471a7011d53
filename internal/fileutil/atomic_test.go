package fileutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteAtomic(t *testing.T) {
	tests := map[string]struct {
		old     string
		write   func(io.Writer) error
		want    string
		wantErr bool
	}{
		"new file": {write: func(w io.Writer) error { _, err := io.WriteString(w, "hello"); return err }, want: "hello"},
		"replaces": {old: "old", write: func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, want: "new"},
		"failed write keeps the old file": {
			old:     "old",
			write:   func(w io.Writer) error { _, _ = io.WriteString(w, "half"); return errors.New("boom") },
			want:    "old",
			wantErr: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if tc.old != "" {
				require.NoError(t, os.WriteFile(path, []byte(tc.old), 0o600))
			}
			n, err := WriteAtomic(path, tc.write)
			if tc.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
				require.Equal(t, int64(len(tc.want)), n)
			}
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(b))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file is left behind")
		})
	}
}
