package forward

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	cfg.BatchSendDeadline = 10 * time.Millisecond
	cfg.FlushDeadline = 10 * time.Second
	return cfg
}

func newTestForwarder(t testing.TB, cfg Config, url string, protocol int) (*Forwarder, *Client) {
	t.Helper()
	c := newTestClient(t, url, protocol, nil)
	f, err := NewForwarder(cfg, c, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return f, c
}

// runForwarder runs f.Run in the background; the returned stop cancels it
// and returns Run's result (also called on cleanup).
func runForwarder(t testing.TB, f *Forwarder) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func totalSamples(batches []Batch) int {
	n := 0
	for i := range batches {
		n += batchCount(&batches[i].Request)
	}
	return n
}

func TestForwarderDeliversEverything(t *testing.T) {
	tests := []struct {
		name     string
		protocol int
		mode     receiverMode
		faults   []fault
		faultFn  func(n int) *fault
		retries  bool
	}{
		{name: "v2", protocol: 2, mode: modeV2},
		{name: "v1", protocol: 1, mode: modeV2},
		{name: "5xx then ok", protocol: 2, mode: modeV2, faults: []fault{{status: 500}, {status: 502}, {status: 503}}, retries: true},
		{name: "429 with retry-after", protocol: 2, mode: modeV2, faults: []fault{{status: 429, header: map[string]string{"Retry-After": "1"}}}, retries: true},
		{name: "connection dropped", protocol: 2, mode: modeV2, faults: []fault{{hangUp: true}}, retries: true},
		{name: "415 falls back to v1", protocol: 2, mode: modeV1Only},
		{name: "2xx without written headers falls back to v1", protocol: 2, mode: modeNoWrittenHdr},
		{name: "every 5th request fails", protocol: 1, mode: modeV2, retries: true, faultFn: func(n int) *fault {
			if n%5 == 0 {
				return &fault{status: 500}
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recv := newReceiver(t, tc.mode, tc.faults...)
			recv.faultFn = tc.faultFn
			cfg := testConfig()
			cfg.MaxSamplesPerSend = 20
			f, c := newTestForwarder(t, cfg, recv.url(), tc.protocol)
			stop := runForwarder(t, f)

			// Three appenders with disjoint series, each in timestamp order.
			const appenders, rounds, seriesEach = 3, 10, 12
			batches := make([][]Batch, appenders)
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Go(func() {
					for r := range rounds {
						b := genBatch("team", g*seriesEach, seriesEach, int64(1000*(r+1)))
						batches[g] = append(batches[g], genBatch("team", g*seriesEach, seriesEach, int64(1000*(r+1))))
						if err := f.Append(context.Background(), b); err != nil {
							t.Errorf("append: %v", err)
						}
					}
				})
			}
			wg.Wait()
			var all []Batch
			for _, bs := range batches {
				all = append(all, bs...)
			}
			want := expected(all...)
			require.Eventually(t, func() bool {
				_, got := recv.snapshot()
				return got.samples() == want.samples()
			}, 30*time.Second, 5*time.Millisecond)
			require.NoError(t, stop())

			reqs, got := recv.snapshot()
			require.Equal(t, want, got, "identical data, every series in order")
			for _, r := range reqs {
				requireHeaders(t, r)
				require.Equal(t, "team", r.tenant)
			}
			require.Zero(t, f.pending.Load())
			require.Zero(t, testutil.CollectAndCount(f.m.dropped))
			sent := testutil.ToFloat64(f.m.sentSamples) + testutil.ToFloat64(f.m.sentHistograms) + testutil.ToFloat64(f.m.sentExemplars)
			require.Equal(t, float64(totalSamples(all)), sent)
			if tc.retries {
				require.Positive(t, testutil.ToFloat64(f.m.retries))
			}
			if tc.mode != modeV2 {
				require.Equal(t, 1, c.Protocol())
			}
		})
	}
}

func TestForwarderDropsNonRecoverable(t *testing.T) {
	tests := map[string]struct {
		fault       fault
		splitBudget int
	}{
		// A 400 is split to save the rest (TestForwarderIsolatesRefusedSeries)
		// unless splitting is off.
		"400, splitting off": {fault: fault{status: 400, body: "out of order sample"}},
		// About the request as a whole: never split.
		"403": {fault: fault{status: 403, body: "forbidden"}, splitBudget: 64},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recv := newReceiver(t, modeV2, tc.fault)
			cfg := testConfig()
			cfg.MinShards, cfg.MaxShards, cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 1, 1, 10, time.Hour
			cfg.MaxSplitRequests = tc.splitBudget
			f, _ := newTestForwarder(t, cfg, recv.url(), 2)
			batches := []Batch{floatBatch("t", 0, 10, 1000), floatBatch("t", 0, 10, 2000), floatBatch("t", 0, 10, 3000)}
			for _, b := range batches {
				require.NoError(t, f.Append(context.Background(), b))
			}
			runForwarder(t, f)
			require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)

			_, got := recv.snapshot()
			require.Equal(t, expected(batches[1:]...), got, "the rejected first request is dropped, the rest delivered")
			require.Equal(t, 10.0, testutil.ToFloat64(f.m.dropped.WithLabelValues(dropReason(&HTTPError{Status: tc.fault.status}))))
			require.Zero(t, testutil.ToFloat64(f.m.retries), "non-recoverable errors are not retried")
			require.Zero(t, testutil.ToFloat64(f.m.splitRequests))
		})
	}
}

func TestForwarderBatchesBySize(t *testing.T) {
	recv := newReceiver(t, modeV2)
	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards, cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 1, 1, 10, time.Hour
	f, _ := newTestForwarder(t, cfg, recv.url(), 2)
	var batches []Batch
	for i := range 25 {
		b := floatBatch("t", 0, 1, int64(i))
		batches = append(batches, b)
		require.NoError(t, f.Append(context.Background(), b))
	}
	stop := runForwarder(t, f)
	require.Eventually(t, func() bool {
		reqs, _ := recv.snapshot()
		return len(reqs) == 2 && f.pending.Load() == 5
	}, 30*time.Second, 5*time.Millisecond, "full requests go out without waiting for the deadline, the partial one waits")
	reqs, _ := recv.snapshot()
	require.Equal(t, []int{10, 10}, []int{reqs[0].samples, reqs[1].samples})

	require.NoError(t, stop())
	reqs, got := recv.snapshot()
	require.Len(t, reqs, 3)
	require.Equal(t, 5, reqs[2].samples, "shutdown flushes the partial request")
	require.Equal(t, expected(batches...), got)
}

func TestForwarderBatchesByDeadline(t *testing.T) {
	recv := newReceiver(t, modeV2)
	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards, cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 2, 2, 1000, 20*time.Millisecond
	f, _ := newTestForwarder(t, cfg, recv.url(), 2)
	// Appended before Run, so nothing can be sent before all three are in.
	batches := []Batch{floatBatch("t", 0, 1, 1), floatBatch("t", 0, 1, 2), floatBatch("t", 0, 1, 3)}
	for _, b := range batches {
		require.NoError(t, f.Append(context.Background(), b))
	}
	require.Positive(t, f.oldestPendingAge())
	runForwarder(t, f)
	require.Eventually(t, func() bool {
		reqs, _ := recv.snapshot()
		return len(reqs) == 1
	}, 30*time.Second, 5*time.Millisecond)
	reqs, got := recv.snapshot()
	require.Equal(t, 3, reqs[0].samples, "one request carries all appends of the deadline window")
	require.Equal(t, expected(batches...), got)
	require.Eventually(t, func() bool { return f.oldestPendingAge() == 0 }, 30*time.Second, 5*time.Millisecond)
}

func TestForwarderBackpressure(t *testing.T) {
	recv := newReceiver(t, modeV2)
	// While failing, the backend answers 503, so nothing is acknowledged and
	// the queue cannot drain between two Appends.
	var failing atomic.Bool
	recv.faultFn = func(int) *fault {
		if failing.Load() {
			return &fault{status: 503}
		}
		return nil
	}
	cfg := testConfig()
	cfg.MaxPendingSamples, cfg.MaxSamplesPerSend = 10, 10
	// Only full requests go out before the shutdown flush, so what stays
	// pending does not depend on timing.
	cfg.BatchSendDeadline = time.Hour
	f, _ := newTestForwarder(t, cfg, recv.url(), 2)
	ctx := context.Background()

	require.NoError(t, f.Append(ctx, floatBatch("t", 0, 6, 1)))
	err := f.Append(ctx, floatBatch("t", 0, 5, 2))
	require.ErrorIs(t, err, ErrBackpressure)
	require.Equal(t, 5.0, testutil.ToFloat64(f.m.rejected))
	require.NoError(t, f.Append(ctx, floatBatch("t", 0, 4, 3)), "exactly full is fine")
	require.ErrorIs(t, f.Append(ctx, floatBatch("t", 0, 1, 4)), ErrBackpressure)
	require.Equal(t, int64(10), f.pending.Load())

	runForwarder(t, f)
	require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)
	failing.Store(true)
	require.NoError(t, f.Append(ctx, floatBatch("t", 0, 25, 5)), "an empty queue accepts even an oversized batch")
	require.ErrorIs(t, f.Append(ctx, floatBatch("t", 0, 1, 6)), ErrBackpressure)
	// Once the backend is back, the two full requests go out; the last 5
	// samples wait for the (hour-long) send deadline or the shutdown flush.
	failing.Store(false)
	require.Eventually(t, func() bool { return f.pending.Load() == 5 }, 30*time.Second, 5*time.Millisecond)
}

func TestForwarderShutdown(t *testing.T) {
	t.Run("flushes pending data", func(t *testing.T) {
		recv := newReceiver(t, modeV2)
		cfg := testConfig()
		cfg.BatchSendDeadline = time.Hour
		f, _ := newTestForwarder(t, cfg, recv.url(), 2)
		stop := runForwarder(t, f)
		b := genBatch("t", 0, 16, 1000)
		require.NoError(t, f.Append(context.Background(), b))
		require.NoError(t, stop())
		_, got := recv.snapshot()
		require.Equal(t, expected(genBatch("t", 0, 16, 1000)), got)
		require.Zero(t, testutil.CollectAndCount(f.m.dropped))
		require.ErrorIs(t, f.Append(context.Background(), floatBatch("t", 0, 1, 1)), ErrClosed)
	})
	t.Run("drops what the deadline does not allow", func(t *testing.T) {
		recv := newReceiver(t, modeV2)
		recv.faultFn = func(int) *fault { return &fault{status: 503} }
		cfg := testConfig()
		cfg.FlushDeadline = 50 * time.Millisecond
		f, _ := newTestForwarder(t, cfg, recv.url(), 2)
		stop := runForwarder(t, f)
		b := floatBatch("t", 0, 30, 1000)
		require.NoError(t, f.Append(context.Background(), b))
		require.Eventually(t, func() bool { return testutil.ToFloat64(f.m.retries) > 0 }, 30*time.Second, time.Millisecond)
		require.NoError(t, stop())
		require.Equal(t, 30.0, testutil.ToFloat64(f.m.dropped.WithLabelValues("shutdown")))
		require.Zero(t, f.pending.Load())
	})
}

func TestForwarderMetadataOnly(t *testing.T) {
	recv := newReceiver(t, modeV2)
	f, _ := newTestForwarder(t, testConfig(), recv.url(), 2)
	runForwarder(t, f)
	require.NoError(t, f.Append(context.Background(), Batch{Tenant: "t", Metadata: familyMeta()}))
	want := expected(Batch{Metadata: familyMeta()}).Meta
	require.Eventually(t, func() bool {
		_, got := recv.snapshot()
		return len(got.Meta) == len(want)
	}, 30*time.Second, 5*time.Millisecond)
	_, got := recv.snapshot()
	require.Equal(t, want, got.Meta)
	// The counter moves after the backend's answer reaches the sender.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.m.sentMetadata) == float64(len(familyMeta()))
	}, 30*time.Second, 5*time.Millisecond)
}

func TestForwarderRejectsInvalidBatch(t *testing.T) {
	f, err := NewForwarder(testConfig(), SenderFunc(nil), nil, nil)
	require.NoError(t, err)
	b := Batch{Tenant: "t", Request: writev2.Request{Symbols: []string{""}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{0, 3}}}}}
	require.ErrorIs(t, f.Append(context.Background(), b), ErrInvalidBatch)
	require.Zero(t, f.pending.Load())
}

func TestForwarderRunTwice(t *testing.T) {
	f, err := NewForwarder(testConfig(), SenderFunc(nil), nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, f.Run(ctx), "a cancelled context shuts down at once")
	require.Error(t, f.Run(context.Background()), "Run may be called only once")
}

func TestNewForwarderValidates(t *testing.T) {
	_, err := NewForwarder(Config{}, SenderFunc(nil), nil, nil)
	require.ErrorContains(t, err, "forward.max_samples_per_send")
	_, err = NewForwarder(testConfig(), nil, nil, nil)
	require.Error(t, err)
}

func TestForwarderCountsPartialWritesExactly(t *testing.T) {
	tests := map[string]struct {
		fault       fault
		wantSent    float64
		wantDropped map[string]float64
	}{
		"400 with Written headers": {
			fault:       fault{status: 400, body: "3 samples out of order", header: map[string]string{headerSamplesWritten: "7", headerHistogramWritten: "0", headerExemplarsWritten: "0"}},
			wantSent:    7,
			wantDropped: map[string]float64{"http_400": 3},
		},
		// Nothing written: the request is split; this backend refused it
		// once only, so both halves are written.
		"400 without Written headers": {
			fault:    fault{status: 400, body: "bad request"},
			wantSent: 10,
		},
		"2xx reporting unwritten samples": {
			fault:       fault{samplesHdr: "4"},
			wantSent:    4,
			wantDropped: map[string]float64{"partial_write": 6},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recv := newReceiver(t, modeV2, tc.fault)
			cfg := testConfig()
			cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 10, time.Hour
			f, _ := newTestForwarder(t, cfg, recv.url(), 2)
			require.NoError(t, f.Append(context.Background(), floatBatch("t", 0, 10, 1000)))
			runForwarder(t, f)
			require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)
			require.Equal(t, tc.wantSent, testutil.ToFloat64(f.m.sentSamples))
			require.Equal(t, len(tc.wantDropped), testutil.CollectAndCount(f.m.dropped))
			for reason, n := range tc.wantDropped {
				require.Equal(t, n, testutil.ToFloat64(f.m.dropped.WithLabelValues(reason)), reason)
			}
			require.Zero(t, testutil.ToFloat64(f.m.retries), "never retried")
		})
	}
}
