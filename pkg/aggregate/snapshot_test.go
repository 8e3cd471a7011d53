package aggregate

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// feed is a deterministic counter workload: 4 pods, a reset, churn.
func feed(step int) []in {
	var ins []in
	for p := range 4 {
		if p == 3 && step < 5 { // pod 3 appears late
			continue
		}
		v := float64(step * (p + 1))
		if p == 1 && step >= 7 { // pod 1 resets at step 7
			v = float64(step - 7)
		}
		ins = append(ins, counter(pod("c_total", "pod", string(rune('a'+p)), "svc", "x"), int64(step)*2000+500, v))
	}
	return ins
}

func run(t *testing.T, e *Engine, from, to int, c *clock) map[string][]point {
	got := map[string][]point{}
	for step := from; step < to; step++ {
		b, names := batchOf(t, feed(step)...)
		e.Process("t", b, names)
		for k, v := range outputs(t, e.Close(c.at(int64(step)*2000+1000), nil)) {
			got[k] = append(got[k], v...)
		}
	}
	return got
}

const outKey = `t/{__name__="c_total:sum_without_pod", svc="x"}`

// TestRestoreContinues: a snapshot restored into a new engine continues
// exactly where the first left off (a clean restart).
func TestRestoreContinues(t *testing.T) {
	want, got := restartAfter(t, 9, 0)
	require.Equal(t, want[outKey], got[outKey])
}

// restartAfter runs the workload once in one engine (want), and once
// (got) in an engine snapshotted after step snapAt, which takes lost more
// steps (then lost in a crash) before a new engine restores the snapshot
// and runs the rest.
func restartAfter(t *testing.T, snapAt, lost int) (want, got map[string][]point) {
	r := rule10s("r", "c_total", nil)
	var c clock
	want = run(t, mustEngine(t, r), 0, 20, &c)
	e1 := mustEngine(t, r)
	got = run(t, e1, 0, snapAt, &c)
	snap, err := e1.Snapshot()
	require.NoError(t, err)
	run(t, e1, snapAt, snapAt+lost, &c) // taken, then lost in the crash (not written either: dropped here)
	e2 := mustEngine(t, r)
	require.NoError(t, e2.Restore(snap))
	for k, v := range run(t, e2, snapAt+lost, 20, &c) {
		got[k] = append(got[k], v...)
	}
	return want, got
}

// TestCrashLosesSamplesNotIncrease: a crash after a snapshot loses the
// samples taken since; the restored bases make the next samples carry
// their increase, so the total stays exact and monotonic.
func TestCrashLosesSamplesNotIncrease(t *testing.T) {
	want, got := restartAfter(t, 9, 2)
	w, g := want[outKey], got[outKey]
	require.Equal(t, w[len(w)-1], g[len(g)-1], "exact final total")
	for i := 1; i < len(g); i++ {
		require.GreaterOrEqual(t, g[i].V, g[i-1].V, "monotonic")
		require.Greater(t, g[i].T, g[i-1].T)
	}
}

// TestHandoffJoinsExactly: a metric moves mid-interval; the new owner
// starts taking samples before it pulls the old owner's state; the merged
// output is what one engine would have written.
func TestHandoffJoinsExactly(t *testing.T) {
	r := rule10s("r", "c_total", nil)
	var c clock
	want := run(t, mustEngine(t, r), 0, 20, &c)

	old, next := mustEngine(t, r), mustEngine(t, r)
	got := run(t, old, 0, 8, &c)
	b, names := batchOf(t, feed(8)...)
	old.Process("t", b, names) // mid-interval on the old owner
	// The new owner gets step 9 before the pull (metric moved).
	b, names = batchOf(t, feed(9)...)
	next.Process("t", b, names)
	state, err := old.ExportMetric("t", "c_total", true)
	require.NoError(t, err)
	require.NotNil(t, state)
	gone, err := old.ExportMetric("t", "c_total", false)
	require.NoError(t, err)
	require.Nil(t, gone, "forgotten")
	require.NoError(t, next.ImportMetric(state))
	for k, v := range outputs(t, next.Close(c.at(9*2000+1000), nil)) {
		got[k] = append(got[k], v...)
	}
	for k, v := range run(t, next, 10, 20, &c) {
		got[k] = append(got[k], v...)
	}
	require.Equal(t, want[outKey], got[outKey])
}

func TestSnapshotDropsChangedRule(t *testing.T) {
	e1 := mustEngine(t, rule10s("r", "c_total", nil))
	var c clock
	run(t, e1, 0, 3, &c)
	snap, err := e1.Snapshot()
	require.NoError(t, err)
	e2 := mustEngine(t, rule10s("r", "c_total", func(r *RuleConfig) { r.Without = nil; r.By = []string{"svc", "pod"} }))
	require.NoError(t, e2.Restore(snap))
	require.Empty(t, e2.set.Load().rules[0].groups)
}

func FuzzDecodeState(f *testing.F) {
	e := mustEngine(f, rule10s("r", "c_total", nil), rule10s("g", "temp", func(r *RuleConfig) { r.Outputs = gaugeOutputs }))
	b, names := batchOf(f, counter(pod("c_total", "pod", "a"), 1000, 1), counter(pod("c_total", "pod", "a"), 2000, 3),
		gauge(pod("temp", "pod", "a"), 1000, 1))
	e.Process("t", b, names)
	snap, err := e.Snapshot()
	require.NoError(f, err)
	f.Add(snap)
	f.Add([]byte(snapshotMagic))
	f.Add(snap[len(snapshotMagic) : len(snap)-4])
	f.Fuzz(func(t *testing.T, b []byte) {
		e := mustEngine(t, rule10s("r", "c_total", nil), rule10s("g", "temp", func(r *RuleConfig) { r.Outputs = gaugeOutputs }))
		if e.Restore(b) != nil {
			// Past the checksum too: a body with a valid one.
			body := append([]byte(snapshotMagic), b...)
			if e.Restore(binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE(body))) != nil {
				return
			}
		}
		// Whatever restored can be used and snapshotted.
		bb, names := batchOf(t, counter(pod("c_total", "pod", "a"), 3000, 5))
		e.Process("t", bb, names)
		var c clock
		e.Close(c.at(100000), nil)
		_, err := e.Snapshot()
		require.NoError(t, err)
	})
}

var _ = labels.EmptyLabels
