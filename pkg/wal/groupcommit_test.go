package wal

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGroupCommitDelayGathers: under the group policy, appends that arrive
// within GroupCommitDelay of the first share its fsync; with a negative
// delay nothing waits, and still every append is durable when it returns.
func TestGroupCommitDelayGathers(t *testing.T) {
	for name, tc := range map[string]struct {
		delay   time.Duration
		grouped bool
	}{
		"a long delay gathers concurrent appends": {delay: 500 * time.Millisecond, grouped: true},
		"a negative delay fsyncs at once":         {delay: -1},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := &faultFS{}
			var syncs atomic.Int64
			fsys.setSync(func(string) error {
				syncs.Add(1)
				return nil
			})
			cfg := testConfig(t)
			cfg.GroupCommitDelay = tc.delay
			w, _ := openTest(t, cfg, fsys)
			before := syncs.Load()
			const n = 8
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					_, err := w.Append(context.Background(), RecordBatch, payload(i, 64))
					require.NoError(t, err)
				})
			}
			close(start)
			wg.Wait()
			got := syncs.Load() - before
			require.Positive(t, got)
			if tc.grouped {
				require.Less(t, got, int64(n), "appends within the delay share fsyncs")
			}
			r := w.NewReader(w.Checkpoint())
			require.Len(t, readN(t, r, n), n, "every acknowledged append is in the log")
			require.NoError(t, r.Close())
		})
	}
}

// TestAppendAll: the records of one AppendAll share one fsync and land in
// order; a record the WAL refuses fails alone; after Close every record
// fails with ErrClosed.
func TestAppendAll(t *testing.T) {
	fsys := &faultFS{}
	var syncs atomic.Int64
	fsys.setSync(func(string) error {
		syncs.Add(1)
		return nil
	})
	cfg := testConfig(t)
	cfg.GroupCommitDelay = -1 // nothing else may gather them
	w, _ := openTest(t, cfg, fsys)
	_, err := w.Append(context.Background(), RecordBatch, payload(0, 64)) // opens the head segment
	require.NoError(t, err)
	before := syncs.Load()
	tooLarge := make([]byte, cfg.SegmentSize)
	errs := w.AppendAll(context.Background(), RecordBatch, [][]byte{payload(1, 64), tooLarge, payload(2, 64), payload(3, 64)})
	require.Len(t, errs, 4)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], ErrRecordTooLarge)
	require.NoError(t, errs[2])
	require.NoError(t, errs[3])
	require.Equal(t, int64(1), syncs.Load()-before, "the records share one fsync")

	r := w.NewReader(w.Checkpoint())
	recs := readN(t, r, 4)
	for i, rec := range recs {
		require.Equal(t, payload(i, 64), rec.Payload, "record %d in order", i)
	}
	requireNoMore(t, r)
	require.NoError(t, r.Close())

	closeWAL(t, w)
	for _, err := range w.AppendAll(context.Background(), RecordBatch, [][]byte{payload(4, 8), payload(5, 8)}) {
		require.ErrorIs(t, err, ErrClosed)
	}
}
