package wal

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestAppendReadPerSyncPolicy(t *testing.T) {
	for _, policy := range []string{SyncAlways, SyncGroup, SyncInterval} {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.SyncPolicy = policy
			w, _ := openTest(t, cfg, nil)
			ends := appendN(t, w, 0, 60, 300) // ~18 records per segment
			r := w.NewReader(w.Checkpoint())
			defer r.Close()
			recs := readN(t, r, 60)
			for i, rec := range recs {
				require.Equal(t, RecordBatch, rec.Type)
				require.Equal(t, payload(i, 300), rec.Payload)
				require.Equal(t, ends[i], rec.Next)
				if i > 0 && rec.Pos.Segment == recs[i-1].Pos.Segment {
					require.Equal(t, recs[i-1].Next, rec.Pos)
				}
			}
			require.Greater(t, ends[59].Segment, ends[0].Segment, "records span several segments")
			requireNoMore(t, r)
		})
	}
}

func TestReaderWaitsForAppend(t *testing.T) {
	w, _ := openTest(t, testConfig(t), nil)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	got := make(chan Record)
	errc := make(chan error, 1)
	go func() {
		rec, err := r.Next(context.Background())
		if err != nil {
			errc <- err
			return
		}
		got <- rec
	}()
	appendN(t, w, 0, 1, 10)
	select {
	case rec := <-got:
		require.Equal(t, payload(0, 10), rec.Payload)
	case err := <-errc:
		require.NoError(t, err)
	}
}

func TestCloseWakesReader(t *testing.T) {
	cfg := testConfig(t)
	w, err := Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := r.Next(context.Background())
		errc <- err
	}()
	closeWAL(t, w)
	require.ErrorIs(t, <-errc, ErrClosed)
	_, err = w.Append(context.Background(), RecordBatch, []byte("x"))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, w.Commit(Position{Segment: 1, Offset: 1}), ErrClosed)
	require.NoError(t, w.Close(context.Background()), "Close is idempotent")
}

func TestAppendRejects(t *testing.T) {
	w, _ := openTest(t, testConfig(t), nil)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := map[string]struct {
		ctx     context.Context
		typ     RecordType
		payload []byte
		wantIs  error
		wantMsg string
	}{
		"type zero":      {ctx: context.Background(), typ: 0, payload: []byte("x"), wantMsg: "reserved"},
		"too large":      {ctx: context.Background(), typ: RecordBatch, payload: make([]byte, minSegmentSize), wantIs: ErrRecordTooLarge},
		"canceled":       {ctx: canceled, typ: RecordBatch, payload: []byte("x"), wantIs: context.Canceled},
		"largest fits":   {ctx: context.Background(), typ: RecordBatch, payload: make([]byte, minSegmentSize-headerSize)},
		"empty payload":  {ctx: context.Background(), typ: RecordBatch, payload: nil},
		"custom type ok": {ctx: context.Background(), typ: 200, payload: []byte("x")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := w.Append(tc.ctx, tc.typ, tc.payload)
			switch {
			case tc.wantIs != nil:
				require.ErrorIs(t, err, tc.wantIs)
			case tc.wantMsg != "":
				require.ErrorContains(t, err, tc.wantMsg)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestRestartReplaysFromCheckpoint(t *testing.T) {
	cfg := testConfig(t)
	w, err := Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	appendN(t, w, 0, 40, 200)
	r := w.NewReader(w.Checkpoint())
	recs := readN(t, r, 15)
	require.NoError(t, r.Close())
	require.NoError(t, w.Commit(recs[14].Next))
	closeWAL(t, w)

	w2, _ := openTest(t, cfg, nil)
	require.Equal(t, recs[14].Next, w2.Checkpoint())
	r2 := w2.NewReader(w2.Checkpoint())
	defer r2.Close()
	replayed := readN(t, r2, 25)
	for i, rec := range replayed {
		require.Equal(t, payload(15+i, 200), rec.Payload)
	}
	requireNoMore(t, r2)
	appendN(t, w2, 40, 5, 200)
	for i, rec := range readN(t, r2, 5) {
		require.Equal(t, payload(40+i, 200), rec.Payload)
	}
}

func TestRestartWithoutCheckpointReplaysAll(t *testing.T) {
	cfg := testConfig(t)
	w, err := Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	appendN(t, w, 0, 10, 100)
	closeWAL(t, w)
	w2, _ := openTest(t, cfg, nil)
	r := w2.NewReader(w2.Checkpoint())
	defer r.Close()
	for i, rec := range readN(t, r, 10) {
		require.Equal(t, payload(i, 100), rec.Payload)
	}
}

func TestCommitDeletesSegments(t *testing.T) {
	cfg := testConfig(t)
	w, reg := openTest(t, cfg, nil)
	appendN(t, w, 0, 100, 300)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	recs := readN(t, r, 100)
	before := segmentFiles(t, cfg.Dir)
	require.Greater(t, len(before), 4)
	require.Equal(t, float64(len(before)), testutil.ToFloat64(w.m.segments))

	// Commit the last record of the third segment: it is fully sent.
	third := recs[0].Pos.Segment + 2
	var lastOfThird Record
	for _, rec := range recs {
		if rec.Pos.Segment == third {
			lastOfThird = rec
		}
	}
	require.NoError(t, w.Commit(lastOfThird.Next))
	require.Equal(t, Position{Segment: third + 1}, w.Checkpoint())
	after := segmentFiles(t, cfg.Dir)
	require.Equal(t, before[3:], after)
	require.Equal(t, float64(len(after)), testutil.ToFloat64(w.m.segments))

	// Older and equal positions are ignored, positions past the end refused.
	require.NoError(t, w.Commit(recs[0].Next))
	require.Equal(t, Position{Segment: third + 1}, w.Checkpoint())
	require.ErrorIs(t, w.Commit(Position{Segment: recs[99].Next.Segment, Offset: recs[99].Next.Offset + 1}), ErrInvalidPosition)

	require.NoError(t, w.Commit(recs[99].Next))
	require.Equal(t, []int{recs[99].Pos.Segment}, segmentFiles(t, cfg.Dir), "only the head remains")
	n, err := testutil.GatherAndCount(reg, "promgov_wal_size_bytes")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestConcurrentAppendersReadExactlyOnce(t *testing.T) {
	for _, policy := range []string{SyncAlways, SyncGroup, SyncInterval} {
		t.Run(policy, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.SyncPolicy = policy
			cfg.SegmentSize = 64 << 10
			w, _ := openTest(t, cfg, nil)
			const appenders, perAppender = 8, 100
			r := w.NewReader(w.Checkpoint())
			defer r.Close()

			readDone := make(chan map[uint32][]uint32, 1)
			readErr := make(chan error, 1)
			go func() {
				seen := map[uint32][]uint32{}
				ctx := context.Background()
				for range appenders * perAppender {
					rec, err := r.Next(ctx)
					if err != nil {
						readErr <- err
						return
					}
					a, i := binary.BigEndian.Uint32(rec.Payload), binary.BigEndian.Uint32(rec.Payload[4:])
					seen[a] = append(seen[a], i)
				}
				readDone <- seen
			}()

			var wg sync.WaitGroup
			errs := make(chan error, appenders)
			for a := range appenders {
				wg.Go(func() {
					buf := make([]byte, 64)
					for i := range perAppender {
						binary.BigEndian.PutUint32(buf, uint32(a))
						binary.BigEndian.PutUint32(buf[4:], uint32(i))
						if _, err := w.Append(context.Background(), RecordBatch, buf); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			var seen map[uint32][]uint32
			select {
			case seen = <-readDone:
			case err := <-readErr:
				require.NoError(t, err)
			}
			require.Len(t, seen, appenders)
			for a := range uint32(appenders) {
				want := make([]uint32, perAppender)
				for i := range want {
					want[i] = uint32(i)
				}
				require.Equal(t, want, seen[a], "appender %d", a)
			}
			requireNoMore(t, r)
			require.Equal(t, float64(appenders*perAppender), testutil.ToFloat64(w.m.appendedRecords))
		})
	}
}

func TestCanceledAppendIsNotWritten(t *testing.T) {
	cfg := testConfig(t)
	fsys := &faultFS{}
	w, _ := openTest(t, cfg, fsys)
	entered, release := make(chan struct{}), make(chan struct{})
	fsys.setSync(func(name string) error {
		if _, ok := parseSegmentName(name); ok {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	first := make(chan error, 1)
	go func() {
		_, err := w.Append(context.Background(), RecordBatch, []byte("durable"))
		first <- err
	}()
	<-entered // the writer is busy with the first record's fsync

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := w.Append(ctx, RecordBatch, []byte("canceled"))
		second <- err
	}()
	cancel()
	require.ErrorIs(t, <-second, context.Canceled)
	close(release)
	require.NoError(t, <-first)
	fsys.setSync(nil)

	_, err := w.Append(context.Background(), RecordBatch, []byte("after"))
	require.NoError(t, err)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	recs := readN(t, r, 2)
	require.Equal(t, "durable", string(recs[0].Payload))
	require.Equal(t, "after", string(recs[1].Payload))
	requireNoMore(t, r)
}

func TestSyncPolicyFsyncs(t *testing.T) {
	tests := map[string]struct {
		policy string
		check  func(t *testing.T, syncs func() int, records int)
	}{
		"always syncs every record": {policy: SyncAlways, check: func(t *testing.T, syncs func() int, n int) {
			require.Equal(t, n, syncs())
		}},
		"group syncs at most once per record": {policy: SyncGroup, check: func(t *testing.T, syncs func() int, n int) {
			require.LessOrEqual(t, syncs(), n)
			require.Positive(t, syncs())
		}},
		"interval syncs in the background": {policy: SyncInterval, check: func(t *testing.T, syncs func() int, _ int) {
			require.Eventually(t, func() bool { return syncs() > 0 }, 10*time.Second, time.Millisecond)
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.SyncPolicy = tc.policy
			cfg.SyncInterval = 5 * time.Millisecond
			cfg.SegmentSize = 1 << 20
			var mu sync.Mutex
			count := 0
			fsys := &faultFS{}
			fsys.setSync(func(name string) error {
				if _, ok := parseSegmentName(name); ok {
					mu.Lock()
					count++
					mu.Unlock()
				}
				return nil
			})
			syncs := func() int {
				mu.Lock()
				defer mu.Unlock()
				return count
			}
			w, _ := openTest(t, cfg, fsys)
			const n = 40
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					_, err := w.Append(context.Background(), RecordBatch, payload(i, 100))
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			tc.check(t, syncs, n)
		})
	}
}

// TestSharedPayloads: a reader that shares its buffers returns, at each
// Next, exactly the payload appended, whether the record lies in the
// read-ahead window, straddles its end or is larger than it, across
// segments; a reader that does not share returns payloads that stay valid.
func TestSharedPayloads(t *testing.T) {
	sizes := []int{100, 70 << 10, 3 << 10, readAhead + 5000, 200 << 10, 10, 90 << 10, 2 * readAhead}
	cfg := testConfig(t)
	cfg.SegmentSize = 1 << 20
	w, _ := openTest(t, cfg, nil)
	var ends []Position
	for round := range 3 {
		for i, n := range sizes {
			end, err := w.Append(context.Background(), RecordBatch, payload(round*len(sizes)+i, n))
			require.NoError(t, err)
			ends = append(ends, end)
		}
	}
	require.Greater(t, ends[len(ends)-1].Segment, ends[0].Segment, "records span several segments")
	for name, share := range map[string]bool{"shared": true, "owned": false} {
		t.Run(name, func(t *testing.T) {
			r := w.NewReader(w.Checkpoint())
			defer r.Close()
			if share {
				r.SharePayloads()
			}
			ctx := context.Background()
			var kept [][]byte
			for i := range ends {
				rec, err := r.Next(ctx)
				require.NoError(t, err)
				want := payload(i, sizes[i%len(sizes)])
				require.Equal(t, want, rec.Payload, "record %d as read", i)
				require.Equal(t, ends[i], rec.Next)
				kept = append(kept, rec.Payload)
			}
			requireNoMore(t, r)
			if !share {
				for i, p := range kept {
					require.Equal(t, payload(i, sizes[i%len(sizes)]), p, "owned payload %d after later reads", i)
				}
			}
		})
	}
}
