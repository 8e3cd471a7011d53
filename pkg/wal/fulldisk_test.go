package wal

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/promgov/promgov/internal/testfs"

	"github.com/stretchr/testify/require"
)

// fillUntilFull appends records until the WAL answers ErrFull and returns
// the end of the last accepted record.
func fillUntilFull(t *testing.T, w *WAL, size int) (last Position, n int) {
	t.Helper()
	for i := 0; ; i++ {
		end, err := w.Append(context.Background(), RecordBatch, payload(i, size))
		if errors.Is(err, ErrFull) {
			require.Positive(t, i, "the first append already failed")
			return last, i
		}
		require.NoError(t, err)
		last = end
	}
}

// forwardAll reads every record from the checkpoint and commits them, as the
// forwarder does once the backend is back.
func forwardAll(t *testing.T, w *WAL, n int) {
	t.Helper()
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	recs := readN(t, r, n)
	require.NoError(t, w.Commit(recs[len(recs)-1].Next))
}

// TestFullDiskRecoversWithoutHelp fills a real 1 MiB filesystem inside the
// first segment (the shape of a small WAL volume during a backend outage),
// forwards everything, and requires appends to succeed again without a
// restart and without anything freeing space from outside; then the same
// across a restart whose checkpoint sits at the end of the only segment.
func TestFullDiskRecoversWithoutHelp(t *testing.T) {
	for _, policy := range []string{SyncGroup, SyncAlways, SyncInterval} {
		t.Run(string(policy), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Dir = filepath.Join(testfs.MountTmpfs(t, "1m"), "wal")
			cfg.SyncPolicy = policy
			cfg.MaxSizeBytes = 0 // the filesystem is the only bound
			w, err := Open(cfg, nil, nil, nil)
			require.NoError(t, err)

			_, n := fillUntilFull(t, w, 4000)
			forwardAll(t, w, n)

			// Space is free again: appends succeed at once.
			appendN(t, w, n, 10, 4000)
			require.NoError(t, w.Close(context.Background()))

			// Fill it again, forward everything, restart on the same
			// directory: the restarted WAL accepts writes too.
			w, err = Open(cfg, nil, nil, nil)
			require.NoError(t, err)
			forwardAll(t, w, 10)
			_, n = fillUntilFull(t, w, 4000)
			forwardAll(t, w, n)
			require.NoError(t, w.Close(context.Background()))
			w, err = Open(cfg, nil, nil, nil)
			require.NoError(t, err)
			defer w.Close(context.Background())
			appendN(t, w, 0, 10, 4000)
		})
	}
}
