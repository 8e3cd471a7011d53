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
