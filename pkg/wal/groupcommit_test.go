package wal

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestGroupCommitDelayGathers: under the group policy, a group waits for
// the appends announced with Expect and for nothing else; with a negative
// delay nothing waits, and still every append is durable when it returns.
// promgov_wal_group_waits_total shows how each wait ended: with the
// longest delay allowed (1 s), a group that went only at the delay's end
// counts under "delay".
func TestGroupCommitDelayGathers(t *testing.T) {
	const n = 8
	for name, tc := range map[string]struct {
		delay       time.Duration
		announce    bool
		wantSyncs   int64 // 0: at least one
		wantArrived bool  // no wait ended at the delay: every announced append came first
	}{
		"announced appends share one fsync":           {delay: time.Second, announce: true, wantSyncs: 1, wantArrived: true},
		"unannounced appends do not wait":             {delay: time.Second},
		"a negative delay fsyncs at once":             {delay: -1, announce: true},
		"the default delay gathers announced appends": {announce: true},
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
			// The first append opens the head segment, which fsyncs more.
			_, err := w.Append(context.Background(), RecordBatch, payload(n, 64))
			require.NoError(t, err)
			before := syncs.Load()
			if tc.announce {
				w.Expect(n)
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					var err error
					if tc.announce {
						_, err = w.AppendExpected(context.Background(), RecordBatch, payload(i, 64))
					} else {
						_, err = w.Append(context.Background(), RecordBatch, payload(i, 64))
					}
					require.NoError(t, err)
				})
			}
			close(start)
			wg.Wait()
			got := syncs.Load() - before
			require.Positive(t, got)
			if tc.wantSyncs > 0 {
				require.Equal(t, tc.wantSyncs, got, "the group waited for every announced append")
			}
			arrived, delayed := testutil.ToFloat64(w.m.waitsArrived), testutil.ToFloat64(w.m.waitsDelay)
			switch {
			case tc.wantArrived:
				require.Zero(t, delayed, "no group waited out the delay")
			case !tc.announce || tc.delay < 0:
				require.Zero(t, arrived+delayed, "no group waited")
			}
			r := w.NewReader(w.Checkpoint())
			require.Len(t, readN(t, r, n+1), n+1, "every acknowledged append is in the log")
			require.NoError(t, r.Close())
		})
	}
}

// TestGroupCommitWithdrawn: an announced append that will not come (the
// push failed before its append) is withdrawn, and the group waiting for it
// goes; an announced append refused before it queues withdraws itself.
func TestGroupCommitWithdrawn(t *testing.T) {
	cfg := testConfig(t)
	cfg.GroupCommitDelay = time.Second
	w, _ := openTest(t, cfg, &faultFS{})

	w.Expect(2) // one append comes, one never does
	done := make(chan error, 1)
	go func() {
		_, err := w.AppendExpected(context.Background(), RecordBatch, payload(1, 64))
		done <- err
	}()
	// The append queues and its group waits for the other announcement.
	require.Eventually(t, func() bool { return w.expected.Load() == 1 }, 10*time.Second, time.Millisecond)
	w.Expect(-1)
	require.NoError(t, <-done)
	require.Zero(t, testutil.ToFloat64(w.m.waitsDelay), "the withdrawal ended the wait, not the delay")
	waits := testutil.ToFloat64(w.m.waitsArrived)

	w.Expect(1)
	_, err := w.AppendExpected(context.Background(), 0, nil)
	require.Error(t, err, "record type 0 is refused")
	require.Zero(t, w.expected.Load(), "a refused append withdraws its announcement")
	_, err = w.Append(context.Background(), RecordBatch, payload(2, 64))
	require.NoError(t, err)
	require.Equal(t, waits, testutil.ToFloat64(w.m.waitsArrived), "nothing was left announced for the next group to wait for")
	require.Zero(t, testutil.ToFloat64(w.m.waitsDelay))
}
