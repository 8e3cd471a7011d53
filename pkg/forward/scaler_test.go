package forward

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/wal"
)

func TestTargetShards(t *testing.T) {
	tests := map[string]struct {
		current  int
		desired  float64
		min, max int
		want     int
	}{
		"grows as soon as needed":       {current: 1, desired: 1.01, min: 1, max: 10, want: 2},
		"grows to what is needed":       {current: 2, desired: 6.3, min: 1, max: 10, want: 7},
		"bounded by max":                {current: 4, desired: 80, min: 1, max: 10, want: 10},
		"keeps within the tolerance":    {current: 10, desired: 7.5, min: 1, max: 10, want: 10},
		"shrinks below the tolerance":   {current: 10, desired: 6.5, min: 1, max: 10, want: 7},
		"idle shrinks to min":           {current: 6, desired: 0, min: 2, max: 10, want: 2},
		"at min stays":                  {current: 1, desired: 0, min: 1, max: 10, want: 1},
		"already enough":                {current: 3, desired: 3, min: 1, max: 10, want: 3},
		"min wins over a lower desired": {current: 3, desired: 0.5, min: 3, max: 10, want: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, targetShards(tc.current, tc.desired, tc.min, tc.max))
		})
	}
}

func TestShardEstimator(t *testing.T) {
	const second = time.Second
	tests := map[string]struct {
		in, out   int64         // per interval of one second
		busy      time.Duration // per interval
		backlog   int64
		want      float64
		wantKnown bool
	}{
		// 1000 elements/s in and out, 0.5 s of send time per second:
		// half a shard keeps up.
		"keeping up": {in: 1000, out: 1000, busy: 500 * time.Millisecond, want: 0.5, wantKnown: true},
		// The same cost per element with a backlog of 20 s of input to
		// drain within 10 s: three times the input rate.
		"backlog": {in: 1000, out: 1000, busy: 500 * time.Millisecond, backlog: 20000, want: 1.5, wantKnown: true},
		// A slower backend (4x the latency) needs 4x the shards.
		"latency": {in: 1000, out: 1000, busy: 2 * time.Second, want: 2, wantKnown: true},
		"idle":    {want: 0, wantKnown: true},
		// Data waits but nothing was answered: no estimate.
		"stalled": {in: 1000, backlog: 5000, wantKnown: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var e shardEstimator
			for range 3 {
				e.observe(tc.in, tc.out, tc.busy, second)
			}
			got, known := e.desired(tc.backlog, backlogDrainTime)
			require.Equal(t, tc.wantKnown, known)
			require.InDelta(t, tc.want, got, 1e-9)
		})
	}
	t.Run("idle after load decays towards zero", func(t *testing.T) {
		var e shardEstimator
		e.observe(1000, 1000, 2*time.Second, second)
		before, _ := e.desired(0, backlogDrainTime)
		for range 20 {
			e.observe(0, 0, 0, second)
		}
		after, known := e.desired(0, backlogDrainTime)
		require.True(t, known)
		require.Less(t, after, 0.01*before)
	})
}

// TestForwarderReshardKeepsOrder reshards over and over, also while the
// previous generation still has requests in flight, under a steady load:
// every sample arrives exactly once and every series in order.
func TestForwarderReshardKeepsOrder(t *testing.T) {
	rec := newRecorder(t, 2*time.Millisecond)
	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards = 1, 8
	cfg.MaxSamplesPerSend = 15
	f, _ := newTestForwarder(t, cfg, rec.url(), 2)
	stop := runForwarder(t, f)

	var batches []Batch
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); ; i++ {
			if err := f.Append(ctx, genBatch("team", 0, 24, i*1000)); err != nil {
				if ctx.Err() == nil {
					t.Errorf("append: %v", err)
				}
				return
			}
			batches = append(batches, genBatch("team", 0, 24, i*1000))
			time.Sleep(time.Millisecond) // a steady producer, not a synchronisation
		}
	})
	// Reshards happen while Run runs: wait for the first delivery.
	require.Eventually(t, func() bool { return testutil.ToFloat64(f.m.sentSamples) > 0 }, 30*time.Second, time.Millisecond)
	counts := []int{3, 1, 5, 2, 8, 4, 1, 6, 2, 7}
	for round := range 40 {
		f.reshard(counts[round%len(counts)])
		time.Sleep(5 * time.Millisecond) // let data flow between reshards
	}
	cancel()
	wg.Wait()
	require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	_, got := rec.snapshot()
	require.Equal(t, expected(batches...), got, "%d batches: each exactly once, every series in order", len(batches))
	require.Equal(t, 40.0, testutil.ToFloat64(f.m.reshards))
	require.Zero(t, testutil.CollectAndCount(f.m.dropped))
}

// TestWALForwarderReshardCommitsOnlyAcknowledged reshards while records
// are in flight: the checkpoint reaches the end and each record is
// delivered exactly once.
func TestWALForwarderReshardCommitsOnlyAcknowledged(t *testing.T) {
	w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	var end wal.Position
	const records = 200
	for i := range records {
		end = appendBatch(t, w, floatBatch("t", 0, 10, int64(1000*(i+1))))
	}
	s := &scriptSender{got: map[int64]int{}, outcome: func(int64) error {
		time.Sleep(time.Millisecond) // the backend's latency
		return nil
	}}
	cfg := walTestConfig()
	cfg.MinShards, cfg.MaxShards, cfg.MaxSamplesPerSend = 1, 8, 7
	wf, stop := runWALForwarder(t, cfg, w, s)
	// Reshards happen while Run runs: wait for the first delivery.
	require.Eventually(t, func() bool { return s.delivered(1000) > 0 }, 30*time.Second, time.Millisecond)
	for round := range 20 {
		wf.fwd.reshard(1 + round%5)
		time.Sleep(2 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return w.Checkpoint() == end }, 30*time.Second, time.Millisecond)
	require.NoError(t, stop())
	for i := range records {
		require.Equal(t, 10, s.delivered(int64(1000*(i+1))), "record %d", i)
	}
}

// TestShardScalingOutageAndRecovery follows the shard count through a
// backend outage under a steady load: it does not grow while the backend
// fails (the retries are one stream), grows after the recovery to drain
// the backlog, and shrinks back to one shard when the load stops.
func TestShardScalingOutageAndRecovery(t *testing.T) {
	// 50 ms per request of 100 samples: one shard sends 2,000 samples/s;
	// the load is 1,500/s, so one shard keeps up until the backlog.
	rec := newRecorder(t, 50*time.Millisecond)
	setDown := rec.failWith(http.StatusServiceUnavailable)
	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards = 1, 8
	cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 100, time.Second
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	cfg.ShardUpdateInterval = 50 * time.Millisecond
	cfg.MaxPendingSamples = 100_000
	f, _ := newTestForwarder(t, cfg, rec.url(), 2)
	f.backlogDrain = time.Second // the scaled-down test wants its backlog gone within a second
	stop := runForwarder(t, f)

	// The timeline: the shard count every 50 ms, by phase.
	type point struct {
		at     time.Duration
		phase  string
		shards int
	}
	var tlMu sync.Mutex
	var timeline []point
	phase := "healthy"
	start := time.Now()
	sample := func() {
		tlMu.Lock()
		timeline = append(timeline, point{time.Since(start), phase, f.numShards()})
		tlMu.Unlock()
	}
	setPhase := func(p string) {
		tlMu.Lock()
		phase = p
		tlMu.Unlock()
		sample()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				sample()
			}
		}
	})
	var batches []Batch
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loadWG sync.WaitGroup
	loadWG.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := int64(1); ; i++ {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			if err := f.Append(loadCtx, floatBatch("t", 0, 15, i)); err != nil {
				if !errors.Is(err, ErrBackpressure) && loadCtx.Err() == nil {
					t.Errorf("append: %v", err)
					return
				}
				continue
			}
			batches = append(batches, floatBatch("t", 0, 15, i))
		}
	})

	require.Eventually(t, func() bool { return testutil.ToFloat64(f.m.sentSamples) >= 3000 }, 30*time.Second, 10*time.Millisecond)
	shardsBefore := f.numShards()
	setPhase("outage")
	setDown(true)
	<-time.After(2 * time.Second) // the scenario: a two-second outage under load
	setPhase("recovery")
	setDown(false)
	require.Eventually(t, func() bool { return f.numShards() > shardsBefore }, 30*time.Second, 10*time.Millisecond,
		"the shards never grew to drain the backlog")
	require.Eventually(t, func() bool { return f.pending.Load() < 1000 }, 60*time.Second, 10*time.Millisecond,
		"the backlog never drained")
	setPhase("idle")
	stopLoad()
	loadWG.Wait()
	require.Eventually(t, func() bool { return f.numShards() == 1 }, 60*time.Second, 10*time.Millisecond,
		"the shards never shrank when idle")
	sample()
	cancel()
	wg.Wait()
	require.NoError(t, stop())

	// Report the timeline (one line per change) and check the outage.
	var b strings.Builder
	maxOutage, maxRecovery := 0, 0
	last, lastPhase := -1, ""
	for _, p := range timeline {
		if p.phase == "outage" {
			maxOutage = max(maxOutage, p.shards)
		}
		if p.phase == "recovery" {
			maxRecovery = max(maxRecovery, p.shards)
		}
		if p.shards != last || p.phase != lastPhase {
			fmt.Fprintf(&b, "\n  %6.2fs %-8s %d shards", p.at.Seconds(), p.phase, p.shards)
			last, lastPhase = p.shards, p.phase
		}
	}
	t.Logf("shard count over time (before the outage %d, max during it %d, max during recovery %d):%s",
		shardsBefore, maxOutage, maxRecovery, b.String())
	require.LessOrEqual(t, maxOutage, shardsBefore, "shards grew while the backend was failing")
	_, got := rec.snapshot()
	require.Equal(t, expected(batches...), got, "everything accepted arrives, in order")
}
