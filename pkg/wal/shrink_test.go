package wal

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fsOp is one truncate or sync of a file, as faultFS saw it.
type fsOp struct {
	op   string
	name string
	size int64
}

// recordShrinks makes fsys record every truncate and sync.
func recordShrinks(fsys *faultFS) func() []fsOp {
	var mu sync.Mutex
	var ops []fsOp
	fsys.setTruncate(func(name string, size int64) error {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, fsOp{"truncate", name, size})
		return nil
	})
	fsys.setSync(func(name string) error {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, fsOp{"sync", name, 0})
		return nil
	})
	return func() []fsOp {
		mu.Lock()
		defer mu.Unlock()
		return append([]fsOp(nil), ops...)
	}
}

// TestCommitShrinksSegmentsInSteps: a segment Commit releases is cut one
// step at a time, each cut fsynced before the next, and then removed; the
// log reads on as before.
func TestCommitShrinksSegmentsInSteps(t *testing.T) {
	fsys := &faultFS{}
	w, cfg, recs := shrinkable(t, fsys)
	first := recs[0].Pos.Segment
	var firstSize int64
	for _, rec := range recs {
		if rec.Pos.Segment == first {
			firstSize = rec.Next.Offset
		}
	}
	require.Greater(t, firstSize, 3*w.shrinkStep)

	ops := recordShrinks(fsys)
	require.NoError(t, w.Commit(Position{Segment: first, Offset: firstSize}))
	require.NotContains(t, segmentFiles(t, cfg.Dir), first, "the committed segment is removed")

	name := fmt.Sprintf("%08d", first)
	var cuts []int64
	got := ops()
	for i, o := range got {
		if o.op != "truncate" || o.name != name {
			continue
		}
		cuts = append(cuts, o.size)
		require.Less(t, i+1, len(got))
		require.Equal(t, fsOp{"sync", name, 0}, got[i+1], "each cut is fsynced before the next")
	}
	var want []int64
	for size := firstSize - w.shrinkStep; size > 0; size -= w.shrinkStep {
		want = append(want, size)
	}
	require.Equal(t, want, cuts, "no cut frees more than one step")

	// The rest of the log is intact.
	r2 := w.NewReader(w.Checkpoint())
	defer r2.Close()
	rest := readN(t, r2, 200-countIn(recs, first))
	require.Equal(t, recs[countIn(recs, first)].Payload, rest[0].Payload)
}

// TestShrinkFailureStillRemoves: a cut that fails leaves the removal to
// free the segment.
func TestShrinkFailureStillRemoves(t *testing.T) {
	fsys := &faultFS{}
	w, cfg, recs := shrinkable(t, fsys)
	fsys.setTruncate(func(string, int64) error { return errors.New("injected truncate failure") })
	require.NoError(t, w.Commit(recs[199].Next))
	require.Equal(t, []int{recs[199].Pos.Segment}, segmentFiles(t, cfg.Dir), "only the head remains")
}

// shrinkable opens a WAL of 64 KiB segments on fsys, cut in 10 KiB steps,
// and appends and reads 200 records of 1,000 bytes.
func shrinkable(t *testing.T, fsys *faultFS) (*WAL, Config, []Record) {
	t.Helper()
	cfg := testConfig(t)
	cfg.SegmentSize = 64 << 10
	w, _ := openTest(t, cfg, fsys)
	w.shrinkStep = 10 << 10
	appendN(t, w, 0, 200, 1000)
	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	return w, cfg, readN(t, r, 200)
}

// countIn counts the records of recs in segment seg.
func countIn(recs []Record, seg int) int {
	n := 0
	for _, rec := range recs {
		if rec.Pos.Segment == seg {
			n++
		}
	}
	return n
}

// TestCrashWhileShrinking: a crash part way through the cuts leaves a
// committed segment shortened mid-record; the next Open removes it, and
// the log reads on from the checkpoint with nothing lost or repeated.
func TestCrashWhileShrinking(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentSize = 64 << 10
	w, err := Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	appendN(t, w, 0, 200, 1000)
	r := w.NewReader(w.Checkpoint())
	recs := readN(t, r, 200)
	require.NoError(t, r.Close())
	first := recs[0].Pos.Segment
	kept := countIn(recs, first)
	path := w.segmentPath(first)
	saved, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, w.Commit(recs[kept-1].Next))
	closeWAL(t, w)

	// The crash: the segment is still there, cut in the middle of a record.
	require.NoError(t, os.WriteFile(path, saved[:len(saved)/2+7], 0o644))

	w2, _ := openTest(t, cfg, nil)
	require.NotContains(t, segmentFiles(t, cfg.Dir), first)
	r2 := w2.NewReader(w2.Checkpoint())
	defer r2.Close()
	rest := readN(t, r2, 200-kept)
	for i, rec := range rest {
		require.Equal(t, recs[kept+i].Payload, rec.Payload)
	}
}
