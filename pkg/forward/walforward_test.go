package forward

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// walTestConfig sends one record per request (10 samples) and commits
// often.
func walTestConfig() Config {
	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards, cfg.MaxSamplesPerSend = 1, 1, 10
	cfg.CheckpointInterval = 2 * time.Millisecond
	cfg.FlushDeadline = 50 * time.Millisecond
	return cfg
}

func openTestWAL(t *testing.T, dir string) *wal.WAL {
	t.Helper()
	cfg := wal.DefaultConfig()
	cfg.Dir = dir
	cfg.SegmentSize = 4 << 10
	w, err := wal.Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	return w
}

// appendBatch writes b to w as the ingester does and returns the record end.
func appendBatch(t testing.TB, w *wal.WAL, b Batch) wal.Position {
	t.Helper()
	raw, err := b.Request.Marshal()
	require.NoError(t, err)
	payload, err := EncodeRecord(&ingesterv1.PushRequest{Tenant: b.Tenant, Request: raw})
	require.NoError(t, err)
	end, err := w.Append(context.Background(), wal.RecordBatch, payload)
	require.NoError(t, err)
	return end
}

// scriptSender records delivered samples by timestamp and answers with
// outcome(ts of the request's first sample).
type scriptSender struct {
	mu      sync.Mutex
	got     map[int64]int // samples delivered by timestamp
	outcome func(ts int64) error
}

func (s *scriptSender) Send(_ context.Context, _ string, req *writev2.Request, _ []prompb.MetricMetadata) error {
	ts := req.Timeseries[0].Samples[0].Timestamp
	if s.outcome != nil {
		if err := s.outcome(ts); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range req.Timeseries {
		for _, smp := range req.Timeseries[i].Samples {
			s.got[smp.Timestamp]++
		}
	}
	return nil
}

func (s *scriptSender) delivered(ts int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[ts]
}

// runWALForwarder runs a WALForwarder over w; stop cancels it and returns
// Run's result (also on cleanup).
func runWALForwarder(t *testing.T, cfg Config, w *wal.WAL, s Sender) (*WALForwarder, func() error) {
	t.Helper()
	wf, err := NewWALForwarder(cfg, w, s, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wf.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return wf, stop
}

func TestWALForwarderCommitsOnlyAcknowledgedPrefix(t *testing.T) {
	w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	var ends []wal.Position
	for i := range 3 {
		ends = append(ends, appendBatch(t, w, floatBatch("t", 0, 10, int64(1000*(i+1)))))
	}
	var release atomic.Bool
	var refused atomic.Int64
	s := &scriptSender{got: map[int64]int{}, outcome: func(ts int64) error {
		if ts == 2000 && !release.Load() {
			refused.Add(1)
			return &RecoverableError{Err: errors.New("backend down")}
		}
		return nil
	}}
	wf, stop := runWALForwarder(t, walTestConfig(), w, s)

	// Record 1 is acknowledged, record 2 keeps failing: the checkpoint
	// stops at the end of record 1 however long record 2 is retried.
	require.Eventually(t, func() bool { return w.Checkpoint() == ends[0] }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return refused.Load() >= 5 }, 10*time.Second, time.Millisecond)
	require.Equal(t, ends[0], w.Checkpoint())
	require.Equal(t, 10, s.delivered(1000))
	require.Zero(t, s.delivered(2000))

	release.Store(true)
	require.Eventually(t, func() bool { return w.Checkpoint() == ends[2] }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	for _, ts := range []int64{1000, 2000, 3000} {
		require.Equal(t, 10, s.delivered(ts), "samples at %d", ts)
	}
	require.Equal(t, ends[2], wf.checkpoint())
}

func TestWALForwarderReplaysAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wal")
	w := openTestWAL(t, dir)
	var ends []wal.Position
	for i := range 3 {
		ends = append(ends, appendBatch(t, w, floatBatch("t", 0, 10, int64(1000*(i+1)))))
	}
	// First life: only record 1 gets through before shutdown.
	down := &scriptSender{got: map[int64]int{}, outcome: func(ts int64) error {
		if ts > 1000 {
			return &RecoverableError{Err: errors.New("backend down")}
		}
		return nil
	}}
	first, stop := runWALForwarder(t, walTestConfig(), w, down)
	require.Eventually(t, func() bool { return w.Checkpoint() == ends[0] }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Zero(t, testutil.ToFloat64(first.fwd.m.dropped.WithLabelValues("shutdown")),
		"unsent data stays in the WAL; it is not dropped")
	require.Positive(t, first.fwd.shutdownDropped.Load(), "records 2 and 3 were still unsent at shutdown")
	require.NoError(t, w.Close(context.Background()))

	// Second life: replay starts after record 1, sends records 2 and 3
	// and then new data.
	w = openTestWAL(t, dir)
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	require.Equal(t, ends[0], w.Checkpoint())
	up := &scriptSender{got: map[int64]int{}}
	_, stop = runWALForwarder(t, walTestConfig(), w, up)
	appendBatch(t, w, floatBatch("t", 0, 10, 4000))
	require.Eventually(t, func() bool { return up.delivered(4000) == 10 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Zero(t, up.delivered(1000), "record 1 was committed and is not sent again")
	require.Equal(t, 10, up.delivered(2000))
	require.Equal(t, 10, up.delivered(3000))
}

func TestWALForwarderSkipsWhatCannotBeSent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bad      func(t *testing.T, w *wal.WAL) // writes the second record
		dropped  float64                        // samples counted as http_400
		badCount float64                        // undecodable records
	}{
		{name: "backend rejects with 400", dropped: 10, bad: func(t *testing.T, w *wal.WAL) {
			appendBatch(t, w, floatBatch("t", 0, 10, 2000))
		}},
		{name: "undecodable payload", badCount: 1, bad: func(t *testing.T, w *wal.WAL) {
			_, err := w.Append(context.Background(), wal.RecordBatch, []byte{0xff, 0xff, 0xff})
			require.NoError(t, err)
		}},
		{name: "unknown record type", badCount: 1, bad: func(t *testing.T, w *wal.WAL) {
			_, err := w.Append(context.Background(), wal.RecordType(99), []byte("x"))
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
			defer func() { require.NoError(t, w.Close(context.Background())) }()
			appendBatch(t, w, floatBatch("t", 0, 10, 1000))
			tc.bad(t, w)
			end := appendBatch(t, w, floatBatch("t", 0, 10, 3000))
			s := &scriptSender{got: map[int64]int{}, outcome: func(ts int64) error {
				if ts == 2000 {
					return &HTTPError{Status: 400, Body: "out of order sample"}
				}
				return nil
			}}
			wf, stop := runWALForwarder(t, walTestConfig(), w, s)
			require.Eventually(t, func() bool { return w.Checkpoint() == end }, 10*time.Second, time.Millisecond,
				"the checkpoint advances past what cannot be sent")
			require.NoError(t, stop())
			require.Equal(t, 10, s.delivered(1000))
			require.Equal(t, 10, s.delivered(3000))
			require.Equal(t, tc.dropped, testutil.ToFloat64(wf.fwd.m.dropped.WithLabelValues("http_400")))
			require.Equal(t, tc.badCount, testutil.ToFloat64(wf.badRecords))
		})
	}
}

func TestWALForwarderBoundsMemory(t *testing.T) {
	w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	for i := range 20 {
		appendBatch(t, w, floatBatch("t", 0, 10, int64(1000*(i+1))))
	}
	var release atomic.Bool
	s := &scriptSender{got: map[int64]int{}, outcome: func(int64) error {
		if !release.Load() {
			return &RecoverableError{Err: errors.New("backend down")}
		}
		return nil
	}}
	cfg := walTestConfig()
	cfg.MaxPendingSamples = 30
	wf, stop := runWALForwarder(t, cfg, w, s)
	// The reader stops once 30 samples are held; the rest waits on disk.
	require.Eventually(t, func() bool { return wf.fwd.pending.Load() == 30 }, 10*time.Second, time.Millisecond)
	require.LessOrEqual(t, wf.tr.outstanding(), 4)
	release.Store(true)
	require.Eventually(t, func() bool { return s.delivered(20000) == 10 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	for i := range 20 {
		require.Equal(t, 10, s.delivered(int64(1000*(i+1))))
	}
}

func TestTracker(t *testing.T) {
	var tr tracker
	p := func(i int) wal.Position { return wal.Position{Segment: 1, Offset: int64(i)} }
	a, b, c := tr.add(p(1)), tr.add(p(2)), tr.add(p(3))
	_, ok := tr.settled()
	require.False(t, ok)
	tr.ref(a)
	tr.release(a) // reader done; one request still carries a
	tr.release(b)
	tr.release(c)
	_, ok = tr.settled()
	require.False(t, ok, "b and c are done but a is not: nothing may be committed")
	tr.release(a)
	got, ok := tr.settled()
	require.True(t, ok)
	require.Equal(t, p(3), got)
	require.Zero(t, tr.outstanding())
}

func FuzzDecodeRecord(f *testing.F) {
	b := genBatch("t", 0, 8, 1000)
	raw, err := b.Request.Marshal()
	require.NoError(f, err)
	payload, err := EncodeRecord(&ingesterv1.PushRequest{Tenant: "t", Request: raw, Metadata: []*ingesterv1.MetricMetadata{{Type: 1, MetricFamilyName: "up"}}})
	require.NoError(f, err)
	f.Add(payload)
	f.Add([]byte{})
	f.Add([]byte{0x1a, 0x03, 0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeRecord(data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidBatch)
			return
		}
		require.NoError(t, ValidateRequest(&got.Request))
	})
}

// BenchmarkWALAppendRecord measures the ingester's durable step per sync
// policy: appending realistic records (a PushRequest of 500 one-sample
// series, as EncodeRecord writes them) from many concurrent pushers. It
// reports MB/s and samples/s.
func BenchmarkWALAppendRecord(b *testing.B) {
	batch := floatBatch("team-a", 0, 500, 1_700_000_000_000)
	raw, err := batch.Request.Marshal()
	require.NoError(b, err)
	payload, err := EncodeRecord(&ingesterv1.PushRequest{Tenant: batch.Tenant, Request: raw})
	require.NoError(b, err)
	for _, policy := range []string{wal.SyncAlways, wal.SyncGroup, wal.SyncInterval} {
		b.Run("policy="+policy, func(b *testing.B) {
			cfg := wal.DefaultConfig()
			cfg.Dir = filepath.Join(b.TempDir(), "wal")
			cfg.SyncPolicy = policy
			cfg.MaxSizeBytes = 0
			w, err := wal.Open(cfg, nil, nil, nil)
			require.NoError(b, err)
			defer func() { require.NoError(b, w.Close(context.Background())) }()
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.SetParallelism(8)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := w.Append(context.Background(), wal.RecordBatch, payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*500)/time.Since(start).Seconds(), "samples/s")
		})
	}
}
