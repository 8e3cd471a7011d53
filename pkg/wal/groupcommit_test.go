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
// the appends announced with Expect, and until the delay has passed since
// the previous fsync began (pacing); with a negative delay nothing waits,
// and still every append is durable when it returns.
// promgov_wal_group_waits_total shows how each wait ended: with the
// longest delay allowed (1 s), a group that went only at the delay's end
// with announced appends missing counts under "delay".
func TestGroupCommitDelayGathers(t *testing.T) {
	const n = 8
	for name, tc := range map[string]struct {
		delay     time.Duration
		announce  bool
		wantSyncs int64 // 0: at least one
		wantWait  bool  // a group waited, and not out the delay
	}{
		"announced appends share one fsync":           {delay: time.Second, announce: true, wantSyncs: 1, wantWait: true},
		"unannounced appends share the paced fsync":   {delay: time.Second, wantSyncs: 1, wantWait: true},
		"a negative delay fsyncs at once":             {delay: -1, announce: true},
		"a negative delay does not pace":              {delay: -1},
		"the default delay gathers announced appends": {announce: true},
		"the default delay, unannounced: all durable": {},
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
			waits := func() float64 { return groupWaits(w) }
			// The first append opens the head segment, which fsyncs more;
			// with no fsync before it, nothing paces it.
			_, err := w.Append(context.Background(), RecordBatch, payload(n, 64))
			require.NoError(t, err)
			require.Zero(t, waits(), "the first group did not wait")
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
				require.Equal(t, tc.wantSyncs, got, "the group waited for every append")
			}
			switch {
			case tc.wantWait:
				require.Positive(t, waits())
				require.Zero(t, testutil.ToFloat64(w.m.waitsDelay), "no group waited out the delay")
			case tc.delay < 0:
				require.Zero(t, waits(), "no group waited")
			}
			r := w.NewReader(w.Checkpoint())
			require.Len(t, readN(t, r, n+1), n+1, "every acknowledged append is in the log")
			require.NoError(t, r.Close())
		})
	}
}

// TestGroupCommitPacing: a group waits until the delay has passed since
// the previous group's fsync began, and whatever queues meanwhile joins
// it; an append after a quiet spell longer than the delay goes at once.
func TestGroupCommitPacing(t *testing.T) {
	t.Run("appends during the wait join the group", func(t *testing.T) {
		fsys := &faultFS{}
		cfg := testConfig(t)
		cfg.GroupCommitDelay = time.Second
		w, _ := openTest(t, cfg, fsys)
		// Open the head segment first: only group fsyncs follow.
		_, err := w.Append(context.Background(), RecordBatch, payload(0, 64))
		require.NoError(t, err)
		var syncs atomic.Int64
		release := make(chan struct{})
		fsys.setSync(func(string) error {
			if syncs.Add(1) == 1 {
				<-release // this group's fsync holds until the test says
			}
			return nil
		})
		appendAsync := func(i int) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := w.Append(context.Background(), RecordBatch, payload(i, 64))
				done <- err
			}()
			return done
		}
		// The first record's group is paced (the head's fsync just ran),
		// then its fsync holds while the next record queues.
		first := appendAsync(1)
		require.Eventually(t, func() bool { return syncs.Load() == 1 }, 10*time.Second, time.Millisecond, "a group is in its fsync")
		second := appendAsync(2)
		require.Eventually(t, func() bool {
			w.qmu.Lock()
			defer w.qmu.Unlock()
			return len(w.queue) == 1
		}, 10*time.Second, time.Millisecond, "the second append queued behind the fsync")
		close(release)
		require.NoError(t, <-first)
		// The writer holds the second append's group until a second has
		// passed since the held fsync began; a third append joins it.
		_, err = w.Append(context.Background(), RecordBatch, payload(3, 64))
		require.NoError(t, err)
		require.NoError(t, <-second)
		require.Equal(t, int64(2), syncs.Load(), "the second and third records shared one fsync")
		require.Equal(t, 2.0, testutil.ToFloat64(w.m.waitsPaced), "both groups waited out their pacing")
	})
	t.Run("an append after a quiet spell does not wait", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.GroupCommitDelay = 20 * time.Millisecond
		w, _ := openTest(t, cfg, &faultFS{})
		_, err := w.Append(context.Background(), RecordBatch, payload(0, 64))
		require.NoError(t, err)
		synced := time.Now() // after the first fsync began
		require.Eventually(t, func() bool { return time.Since(synced) > 2*cfg.GroupCommitDelay }, 10*time.Second, time.Millisecond)
		_, err = w.Append(context.Background(), RecordBatch, payload(1, 64))
		require.NoError(t, err)
		require.Zero(t, groupWaits(w), "no group waited")
	})
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

// TestGroupCommitDelayBoundsTheWait: an announcement that never ends (a
// leaked Expect) holds a group for the delay and no longer; the wait
// counts under "delay".
func TestGroupCommitDelayBoundsTheWait(t *testing.T) {
	cfg := testConfig(t)
	cfg.GroupCommitDelay = 50 * time.Millisecond
	w, _ := openTest(t, cfg, &faultFS{})
	w.Expect(1) // never appended nor withdrawn
	done := make(chan error, 1)
	go func() {
		_, err := w.Append(context.Background(), RecordBatch, payload(0, 64))
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the append waited far past group_commit_delay for an announcement that never came")
	}
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.waitsDelay))
	w.Expect(-1)
}

// groupWaits is how many groups waited before their fsync, however the
// wait ended.
func groupWaits(w *WAL) float64 {
	return testutil.ToFloat64(w.m.waitsArrived) + testutil.ToFloat64(w.m.waitsPaced) + testutil.ToFloat64(w.m.waitsDelay)
}
