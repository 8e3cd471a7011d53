package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// segmentFileSizes returns the size on disk of each segment file in dir.
func segmentFileSizes(t *testing.T, dir string) map[int]int64 {
	t.Helper()
	sizes := map[int]int64{}
	for _, idx := range segmentFiles(t, dir) {
		st, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%08d", idx)))
		require.NoError(t, err)
		sizes[idx] = st.Size()
	}
	return sizes
}

// copyDir copies the files of src into a new directory, as a crash leaves
// them: what was written, fsynced or not, and nothing the WAL would do on
// Close.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "wal")
	require.NoError(t, os.MkdirAll(dst, 0o755))
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// TestPreallocatedSegments checks the files preallocation leaves: the head
// carries zeros past its records while it is written; a sealed segment, a
// closed WAL and a WAL reopened after a crash hold exactly their records,
// and the zeros a crash leaves are not counted as a torn tail.
func TestPreallocatedSegments(t *testing.T) {
	const n, size = 40, 300
	tests := map[string]struct {
		preallocate bool
		segmentSize int64
	}{
		"preallocated, small segments": {preallocate: true, segmentSize: minSegmentSize},
		"preallocated, one segment":    {preallocate: true, segmentSize: 64 << 20},
		"not preallocated":             {preallocate: false, segmentSize: minSegmentSize},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Preallocate, cfg.SegmentSize = tc.preallocate, tc.segmentSize
			w, _ := openTest(t, cfg, nil)
			ends := appendN(t, w, 0, n, size)

			// Where each segment's records end.
			recEnd := map[int]int64{}
			for _, e := range ends {
				recEnd[e.Segment] = e.Offset
			}
			head := ends[len(ends)-1].Segment
			running := segmentFileSizes(t, cfg.Dir)
			for idx, end := range recEnd {
				switch {
				case idx != head:
					require.Equal(t, end, running[idx], "sealed segment %d holds exactly its records", idx)
				case tc.preallocate:
					require.Equal(t, min(preallocStep, tc.segmentSize), running[idx], "the head is preallocated")
				default:
					require.Equal(t, end, running[idx], "the head holds its records")
				}
			}

			// A crash: reopen a copy of the files as they are now.
			crashed := cfg
			crashed.Dir = copyDir(t, cfg.Dir)
			w2, _ := openTest(t, crashed, nil)
			require.Equal(t, recEnd, nonEmpty(segmentFileSizes(t, crashed.Dir)), "the zeros are trimmed")
			require.Zero(t, testutil.ToFloat64(w2.m.truncatedBytes), "zeros are not a torn tail")
			appendN(t, w2, n, 5, size)
			r := w2.NewReader(w2.Checkpoint())
			defer r.Close()
			for i, rec := range readN(t, r, n+5) {
				require.Equal(t, payload(i, size), rec.Payload)
			}
			requireNoMore(t, r)
			require.Zero(t, testutil.ToFloat64(w2.m.corruptRecords))

			// Close trims the head.
			closeWAL(t, w)
			require.Equal(t, recEnd, nonEmpty(segmentFileSizes(t, cfg.Dir)))
		})
	}
}

// nonEmpty drops the empty segments of sizes.
func nonEmpty(sizes map[int]int64) map[int]int64 {
	for idx, s := range sizes {
		if s == 0 {
			delete(sizes, idx)
		}
	}
	return sizes
}
