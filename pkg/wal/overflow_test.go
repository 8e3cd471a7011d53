package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the current fake time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add advances the clock.
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openClock opens a WAL with a fake clock.
func openClock(t *testing.T, cfg Config) (*WAL, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	w, err := open(cfg, nil, nil, prometheus.NewRegistry(), clock.Now)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, clock
}

// recordIndex parses the record number of a test payload.
func recordIndex(t *testing.T, p []byte) int {
	t.Helper()
	var i int
	_, err := fmt.Sscanf(string(p), "record-%06d-", &i)
	require.NoError(t, err)
	return i
}

func TestMaxSizeBackpressure(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxSizeBytes = 2 * cfg.SegmentSize
	w, _ := openTest(t, cfg, nil)
	var ends []Position
	var err error
	for i := 0; err == nil; i++ {
		var end Position
		end, err = w.Append(context.Background(), RecordBatch, payload(i, 300))
		if err == nil {
			ends = append(ends, end)
		}
		require.Less(t, i, 1000, "never full")
	}
	require.ErrorIs(t, err, ErrFull)
	require.ErrorContains(t, err, "max_size_bytes")
	require.LessOrEqual(t, testutil.ToFloat64(w.m.sizeBytes), float64(cfg.MaxSizeBytes))
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.appendFailures.WithLabelValues(reasonFull)))

	// Still full until the forwarder commits; nothing was dropped.
	_, err = w.Append(context.Background(), RecordBatch, payload(9999, 300))
	require.ErrorIs(t, err, ErrFull)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	recs := readN(t, r, len(ends))
	for i, rec := range recs {
		require.Equal(t, i, recordIndex(t, rec.Payload))
	}
	require.NoError(t, w.Commit(recs[len(recs)-1].Next))
	appendN(t, w, len(ends), 3, 300)
	require.Zero(t, testutil.ToFloat64(w.m.droppedSegments))
}

func TestMaxSizeDropOldest(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxSizeBytes = 3 * cfg.SegmentSize
	cfg.OverflowPolicy = OverflowDropOldest
	w, _ := openTest(t, cfg, nil)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	const n = 200
	appendN(t, w, 0, 1, 300)
	require.Equal(t, 0, recordIndex(t, readN(t, r, 1)[0].Payload))
	appendN(t, w, 1, n-1, 300)

	require.LessOrEqual(t, testutil.ToFloat64(w.m.sizeBytes), float64(cfg.MaxSizeBytes))
	dropped := testutil.ToFloat64(w.m.droppedSegments)
	require.Greater(t, dropped, 0.0)
	require.Greater(t, testutil.ToFloat64(w.m.droppedBytes), 0.0)
	require.Greater(t, w.Checkpoint().Segment, 1, "checkpoint moved past dropped segments")

	// The reader was inside a dropped segment: it continues with the oldest
	// remaining records, in order, up to the newest.
	var got []int
	for len(got) == 0 || got[len(got)-1] != n-1 {
		got = append(got, recordIndex(t, readN(t, r, 1)[0].Payload))
	}
	require.Greater(t, got[0], 1)
	for i := 1; i < len(got); i++ {
		require.Equal(t, got[i-1]+1, got[i])
	}
	requireNoMore(t, r)
}

func TestMaxAgeBackpressure(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxAge = time.Minute
	w, clock := openClock(t, cfg)
	ends := appendN(t, w, 0, 3, 100)
	clock.Add(30 * time.Second)
	appendN(t, w, 3, 1, 100)
	require.Equal(t, 30.0, testutil.ToFloat64(w.m.oldestAge))

	clock.Add(31 * time.Second)
	_, err := w.Append(context.Background(), RecordBatch, []byte("too late"))
	require.ErrorIs(t, err, ErrFull)
	require.ErrorContains(t, err, "max_age")

	// Committing the old records lifts the backpressure.
	require.NoError(t, w.Commit(ends[2]))
	require.Equal(t, 31.0, testutil.ToFloat64(w.m.oldestAge))
	appendN(t, w, 4, 1, 100)
}

func TestMaxAgeDropOldest(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxAge = time.Minute
	cfg.OverflowPolicy = OverflowDropOldest
	w, clock := openClock(t, cfg)
	ends := appendN(t, w, 0, 20, 300) // fills the first segment, rotates
	require.Greater(t, ends[19].Segment, ends[0].Segment)
	clock.Add(2 * time.Minute)
	appendN(t, w, 20, 1, 300)

	require.Equal(t, 1.0, testutil.ToFloat64(w.m.droppedSegments))
	require.Equal(t, Position{Segment: ends[0].Segment + 1}, w.Checkpoint())
	r := w.NewReader(Position{Segment: ends[0].Segment})
	defer r.Close()
	rec := readN(t, r, 1)[0]
	require.Equal(t, ends[0].Segment+1, rec.Pos.Segment)
}
