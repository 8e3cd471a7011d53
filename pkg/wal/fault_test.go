package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// errInjected is the error of injected faults.
var errInjected = errors.New("injected fault")

func TestWriteFaultsKeepWALConsistent(t *testing.T) {
	tests := map[string]struct {
		write    *writeFault
		syncErr  error
		wantFull bool
	}{
		"short write":      {write: &writeFault{n: 7, err: nil}},
		"short write err":  {write: &writeFault{n: 20, err: errInjected}},
		"write error":      {write: &writeFault{err: errInjected}},
		"fsync error":      {syncErr: errInjected},
		"disk full write":  {write: &writeFault{n: 3, err: fmt.Errorf("write: %w", syscall.ENOSPC)}, wantFull: true},
		"disk full fsync":  {syncErr: &os.PathError{Op: "sync", Path: "x", Err: syscall.ENOSPC}, wantFull: true},
		"quota full write": {write: &writeFault{err: syscall.EDQUOT}, wantFull: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			fsys := &faultFS{}
			w, err := Open(cfg, fsys, nil, nil)
			require.NoError(t, err)
			appendN(t, w, 0, 5, 100)

			if tc.write != nil {
				fsys.setWrite(func(name string, _ []byte) *writeFault {
					if _, ok := parseSegmentName(name); ok {
						return tc.write
					}
					return nil
				})
			}
			if tc.syncErr != nil {
				fsys.setSync(func(name string) error {
					if _, ok := parseSegmentName(name); ok {
						return tc.syncErr
					}
					return nil
				})
			}
			_, err = w.Append(context.Background(), RecordBatch, []byte("never acknowledged"))
			require.Error(t, err)
			require.Equal(t, tc.wantFull, errors.Is(err, ErrFull), "err %v", err)
			require.Equal(t, 1.0, testutil.ToFloat64(w.m.appendFailures.WithLabelValues(map[bool]string{true: reasonFull, false: reasonIO}[tc.wantFull])))
			fsys.setWrite(nil)
			fsys.setSync(nil)

			// The WAL keeps working and never exposes the failed record.
			appendN(t, w, 5, 5, 100)
			r := w.NewReader(w.Checkpoint())
			for i, rec := range readN(t, r, 10) {
				require.Equal(t, payload(i, 100), rec.Payload)
			}
			requireNoMore(t, r)
			require.NoError(t, r.Close())
			closeWAL(t, w)

			// Nor after a restart, and nothing is counted as corrupt.
			w2, _ := openTest(t, cfg, nil)
			r2 := w2.NewReader(w2.Checkpoint())
			defer r2.Close()
			for i, rec := range readN(t, r2, 10) {
				require.Equal(t, payload(i, 100), rec.Payload)
			}
			requireNoMore(t, r2)
			require.Zero(t, testutil.ToFloat64(w2.m.corruptRecords))
		})
	}
}

func TestPersistentDiskFullIsBackpressure(t *testing.T) {
	tests := map[string]bool{"writes fail": false, "segment creation fails too": true}
	for name, dirSyncFails := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			fsys := &faultFS{}
			w, _ := openTest(t, cfg, fsys)
			appendN(t, w, 0, 2, 100)
			fsys.setWrite(func(string, []byte) *writeFault { return &writeFault{err: syscall.ENOSPC} })
			fsys.setSync(func(name string) error {
				if dirSyncFails && name == filepath.Base(cfg.Dir) {
					return syscall.ENOSPC
				}
				return nil
			})
			for i := range 5 {
				_, err := w.Append(context.Background(), RecordBatch, []byte("x"))
				require.ErrorIs(t, err, ErrFull, "append %d", i)
			}
			require.Equal(t, []int{1}, segmentFiles(t, cfg.Dir), "no trail of empty segments")
			fsys.setWrite(nil)
			fsys.setSync(nil)
			appendN(t, w, 2, 2, 100)
			r := w.NewReader(w.Checkpoint())
			defer r.Close()
			for i, rec := range readN(t, r, 4) {
				require.Equal(t, payload(i, 100), rec.Payload)
			}
			requireNoMore(t, r)
		})
	}
}

// lastSegment returns the path and size of the newest non-empty segment.
func lastSegment(t *testing.T, dir string) (string, int64) {
	t.Helper()
	idx := segmentFiles(t, dir)
	for i := len(idx) - 1; i >= 0; i-- {
		p := filepath.Join(dir, fmt.Sprintf("%08d", idx[i]))
		st, err := os.Stat(p)
		require.NoError(t, err)
		if st.Size() > 0 {
			return p, st.Size()
		}
	}
	t.Fatal("no non-empty segment")
	return "", 0
}

func TestTornTailIsTruncated(t *testing.T) {
	next := appendRecord(nil, RecordBatch, bytes.Repeat([]byte("n"), 200))
	badCRC := bytes.Clone(next)
	badCRC[len(badCRC)-1] ^= 1
	tests := map[string][]byte{
		"partial header":  next[:5],
		"header only":     next[:headerSize],
		"partial payload": next[:headerSize+50],
		"bad payload crc": badCRC,
		// A torn record in a preallocated segment: zeros follow it.
		"partial payload, then zeroes": append(bytes.Clone(next[:headerSize+50]), make([]byte, 1000)...),
	}
	for name, tail := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			w, err := Open(cfg, nil, nil, nil)
			require.NoError(t, err)
			appendN(t, w, 0, 8, 200)
			closeWAL(t, w)

			path, size := lastSegment(t, cfg.Dir)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write(tail)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			w2, _ := openTest(t, cfg, nil)
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, size, st.Size(), "torn tail truncated")
			require.Equal(t, float64(len(tail)), testutil.ToFloat64(w2.m.truncatedBytes))

			appendN(t, w2, 8, 2, 200)
			r := w2.NewReader(w2.Checkpoint())
			defer r.Close()
			for i, rec := range readN(t, r, 10) {
				require.Equal(t, payload(i, 200), rec.Payload)
			}
			requireNoMore(t, r)
			require.Zero(t, testutil.ToFloat64(w2.m.corruptRecords))
		})
	}
}

func TestCorruptRecordIsSkippedAndCounted(t *testing.T) {
	tests := map[string]struct {
		segment func(segs []int) int // which segment to damage
		byteAt  int64                // offset of the flipped byte inside the second record
	}{
		"payload in middle segment": {segment: func(s []int) int { return s[len(s)/2] }, byteAt: headerSize + 10},
		"length in middle segment":  {segment: func(s []int) int { return s[len(s)/2] }, byteAt: 2},
		"type in first segment":     {segment: func(s []int) int { return s[0] }, byteAt: 8},
		"payload in last segment":   {segment: func(s []int) int { return s[len(s)-1] }, byteAt: headerSize + 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			w, err := Open(cfg, nil, nil, nil)
			require.NoError(t, err)
			const n, size = 60, 300
			ends := appendN(t, w, 0, n, size)
			closeWAL(t, w)

			segs := segmentFiles(t, cfg.Dir)
			victimSeg := tc.segment(segs)
			// The second record of the victim segment.
			var victim int
			for i, e := range ends {
				if e.Segment == victimSeg {
					victim = i + 1
					break
				}
			}
			require.Equal(t, victimSeg, ends[victim].Segment, "victim segment holds at least two records")
			recLen := int64(headerSize + size)
			path := filepath.Join(cfg.Dir, fmt.Sprintf("%08d", victimSeg))
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			data[ends[victim].Offset-recLen+tc.byteAt] ^= 0x40
			require.NoError(t, os.WriteFile(path, data, 0o644))

			w2, _ := openTest(t, cfg, nil)
			require.Zero(t, testutil.ToFloat64(w2.m.truncatedBytes), "damage in the middle is not a torn tail")
			r := w2.NewReader(w2.Checkpoint())
			defer r.Close()
			recs := readN(t, r, n-1)
			var got []int
			for _, rec := range recs {
				var i int
				_, err := fmt.Sscanf(string(rec.Payload), "record-%06d-", &i)
				require.NoError(t, err)
				require.Equal(t, payload(i, size), rec.Payload)
				got = append(got, i)
			}
			var want []int
			for i := range n {
				if i != victim {
					want = append(want, i)
				}
			}
			require.Equal(t, want, got, "exactly the damaged record is lost")
			requireNoMore(t, r)
			require.Equal(t, 1.0, testutil.ToFloat64(w2.m.corruptRecords))
			require.Equal(t, float64(recLen), testutil.ToFloat64(w2.m.corruptBytes))

			// Forwarding continues past the damage.
			require.NoError(t, w2.Commit(recs[len(recs)-1].Next))
			appendN(t, w2, n, 1, size)
			require.Equal(t, payload(n, size), readN(t, r, 1)[0].Payload)
		})
	}
}

func TestInvalidCheckpointReplaysEverything(t *testing.T) {
	cfg := testConfig(t)
	w, err := Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	ends := appendN(t, w, 0, 5, 50)
	require.NoError(t, w.Commit(ends[2]))
	closeWAL(t, w)
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, checkpointName), []byte("garbage"), 0o644))

	w2, _ := openTest(t, cfg, nil)
	r := w2.NewReader(w2.Checkpoint())
	defer r.Close()
	for i, rec := range readN(t, r, 5) {
		require.Equal(t, payload(i, 50), rec.Payload)
	}
}

func TestCommitFailureKeepsCheckpoint(t *testing.T) {
	cfg := testConfig(t)
	fsys := &faultFS{}
	w, _ := openTest(t, cfg, fsys)
	ends := appendN(t, w, 0, 40, 300)
	fsys.setSync(func(name string) error {
		if name == checkpointTmpName {
			return errInjected
		}
		return nil
	})
	before := segmentFiles(t, cfg.Dir)
	require.ErrorIs(t, w.Commit(ends[30]), errInjected)
	require.Equal(t, Position{Segment: ends[0].Segment}, w.Checkpoint())
	require.Equal(t, before, segmentFiles(t, cfg.Dir), "nothing deleted without a durable checkpoint")
	fsys.setSync(nil)
	require.NoError(t, w.Commit(ends[30]))
	require.Equal(t, ends[30], w.Checkpoint())
}

func TestFsyncErrorFailsWholeGroup(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentSize = 8 << 20
	fsys := &faultFS{}
	w, _ := openTest(t, cfg, fsys)
	appendN(t, w, 0, 3, 100)
	fsys.setSync(func(name string) error {
		if _, ok := parseSegmentName(name); ok {
			return errInjected
		}
		return nil
	})
	// Large records so that one group spans several buffered writes.
	const appenders = 6
	errs := make(chan error, appenders*4)
	done := make(chan struct{})
	for range appenders {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 4 {
				_, err := w.Append(context.Background(), RecordBatch, bytes.Repeat([]byte("z"), 300<<10))
				errs <- err
			}
		}()
	}
	for range appenders {
		<-done
	}
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, errInjected)
	}
	fsys.setSync(nil)
	appendN(t, w, 3, 2, 100)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	for i, rec := range readN(t, r, 5) {
		require.Equal(t, payload(i, 100), rec.Payload)
	}
	requireNoMore(t, r)
}

func TestRestartsDoNotAccumulateSegments(t *testing.T) {
	cfg := testConfig(t)
	for range 5 {
		w, err := Open(cfg, nil, nil, nil)
		require.NoError(t, err)
		closeWAL(t, w)
	}
	require.Empty(t, segmentFiles(t, cfg.Dir))
	w, err := Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	appendN(t, w, 0, 1, 10)
	closeWAL(t, w)
	for range 3 {
		w, err := Open(cfg, nil, nil, nil)
		require.NoError(t, err)
		closeWAL(t, w)
	}
	require.Equal(t, []int{1}, segmentFiles(t, cfg.Dir))
}

func TestSegmentShorterThanExpectedDoesNotStall(t *testing.T) {
	cfg := testConfig(t)
	w, _ := openTest(t, cfg, nil)
	ends := appendN(t, w, 0, 30, 300)
	victim := ends[0].Segment
	// Something outside the WAL cuts the first segment in half.
	require.NoError(t, os.Truncate(filepath.Join(cfg.Dir, fmt.Sprintf("%08d", victim)), ends[2].Offset+5))
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	recs := readN(t, r, 3)
	for i, rec := range recs {
		require.Equal(t, payload(i, 300), rec.Payload)
	}
	// The rest of the first segment is lost, counted, and reading goes on.
	var next Record
	for {
		next = readN(t, r, 1)[0]
		if next.Pos.Segment != victim {
			break
		}
	}
	require.Equal(t, Position{Segment: victim + 1}, next.Pos)
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.corruptRecords))
}
