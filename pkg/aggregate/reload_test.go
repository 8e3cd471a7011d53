package aggregate

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

const reqOut = `t/{__name__="c_total:sum_without_pod", svc="x"}`

// push processes one counter sample per pod (pods[i] at vals[i]) and
// reports whether the engine took them.
func push(t *testing.T, e *Engine, ts int64, vals ...float64) bool {
	t.Helper()
	var ins []in
	for i, v := range vals {
		ins = append(ins, counter(pod("c_total", "pod", fmt.Sprint(i), "svc", "x"), ts, v))
	}
	b, names := batchOf(t, ins...)
	kept, taken := e.Process("t", b, names)
	if taken.Series == 0 {
		require.Equal(t, b, kept)
		return false
	}
	require.Equal(t, len(vals), taken.Series)
	require.Empty(t, kept)
	return true
}

func reload(t *testing.T, e *Engine, now int64, rules ...RuleConfig) ReloadSummary {
	t.Helper()
	sum, err := e.Reload(Config{Rules: rules}, time.UnixMilli(now))
	require.NoError(t, err)
	return sum
}

// TestReloadAddsRules: an engine started without rules takes none of a
// batch, and aggregates once a reload adds a rule.
func TestReloadAddsRules(t *testing.T) {
	e, err := NewEngine(Config{}, nil, nil)
	require.NoError(t, err)
	require.False(t, e.HasRules())
	require.False(t, push(t, e, 1000, 1, 2))
	sum := reload(t, e, 1500, rule10s("r", "c_total", nil))
	require.Equal(t, ReloadSummary{Added: []string{"r"}}, sum)
	require.True(t, e.HasRules())
	require.True(t, push(t, e, 2000, 1, 2))
	require.True(t, push(t, e, 5000, 4, 6))
	var c clock
	require.Equal(t, []point{{T: 9999, V: 7}}, outputs(t, e.Close(c.at(11000), nil))[reqOut])
}

// TestReloadRemovesRule: a removed rule takes the entries stamped before
// the end of the interval open at the reload, writes that interval at its
// usual time and then stops; later entries are written unaggregated, and
// its metrics go.
func TestReloadRemovesRule(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, err := NewEngine(Config{Rules: []RuleConfig{rule10s("r", "c_total", nil)}}, nil, reg)
	require.NoError(t, err)
	require.True(t, push(t, e, 1000, 0, 0))
	require.True(t, push(t, e, 5000, 10, 20))
	require.Equal(t, ReloadSummary{Removed: []string{"r"}}, reload(t, e, 6000))
	require.True(t, push(t, e, 8000, 15, 30), "before the hand-over at 10s: still the rule's")
	require.False(t, push(t, e, 11000, 20, 40), "from the hand-over on: written as is")
	var c clock
	require.Empty(t, e.Close(c.at(10999), nil), "max_delay not over")
	require.True(t, e.HasRules(), "still closing its last interval")
	got := outputs(t, e.Close(c.at(11000), nil))
	require.Equal(t, map[string][]point{reqOut: {{T: 9999, V: 45}}}, got, "every increase it took, at the interval's end")
	require.False(t, e.HasRules())
	require.Empty(t, e.Close(c.at(30000), nil))
	require.False(t, push(t, e, 9000, 17, 35), "a late entry of the removed rule is written as is")
	n, err := testutil.GatherAndCount(reg, "promgov_aggregation_samples_in_total", "promgov_aggregation_input_series")
	require.NoError(t, err)
	require.Zero(t, n, "the removed rule's metrics are gone")
	require.Zero(t, e.groups.Load())
}

// TestReloadChangesRule: a changed rule hands over at the end of the
// interval open at the reload. The old version writes that interval; the
// new one takes the inputs' bases (no increase is lost between them) and,
// when it writes the same output series, continues their totals (so the
// output stays a monotonic counter); its first interval starts after the
// old version's last, so no timestamp is written twice.
func TestReloadChangesRule(t *testing.T) {
	for name, tc := range map[string]struct {
		change  func(*RuleConfig)
		out     string
		closeAt int64
		want    []point
	}{
		"same outputs, 5s interval": {
			change: func(r *RuleConfig) { r.Interval = model.Duration(5 * time.Second) }, out: reqOut, closeAt: 16000,
			want: []point{{T: 9999, V: 45}, {T: 14999, V: 72}}, // 45 + 15 (joined at 11s) + 12 (a reset to 2, b +10)
		},
		"other outputs": {
			change: func(r *RuleConfig) { r.Without, r.By = nil, []string{"svc"} }, out: `t/{__name__="svc:c_total:sum", svc="x"}`, closeAt: 21000,
			want: []point{{T: 19999, V: 27}}, // its own series, from 0: 15 + 12
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := mustEngine(t, rule10s("r", "c_total", nil))
			require.True(t, push(t, e, 1000, 0, 0))
			require.True(t, push(t, e, 5000, 10, 20))
			changed := rule10s("r", "c_total", tc.change)
			require.Equal(t, ReloadSummary{Changed: []string{"r"}}, reload(t, e, 6000, changed))
			require.True(t, push(t, e, 8000, 15, 30)) // the old version's
			require.True(t, push(t, e, 11000, 20, 40))
			require.True(t, push(t, e, 13000, 2, 50))
			var c clock
			got := outputs(t, e.Close(c.at(11000), nil))
			require.Equal(t, []point{{T: 9999, V: 45}}, got[reqOut], "the old version's last interval")
			got = outputs(t, e.Close(c.at(tc.closeAt), nil))
			if tc.out == reqOut {
				require.Equal(t, tc.want[1:], got[tc.out])
			} else {
				require.Equal(t, tc.want, got[tc.out])
				require.NotContains(t, got, reqOut)
			}
			require.Len(t, e.set.Load().retiring, 0)
		})
	}
}

// TestReloadUnchangedKeepsState: a reload that leaves a rule as it was
// keeps its state and open intervals.
func TestReloadUnchangedKeepsState(t *testing.T) {
	e := mustEngine(t, rule10s("r", "c_total", nil))
	require.True(t, push(t, e, 1000, 0, 0))
	require.True(t, push(t, e, 5000, 10, 20))
	require.Equal(t, ReloadSummary{Unchanged: []string{"r"}, Added: []string{"g"}},
		reload(t, e, 6000, rule10s("r", "c_total", nil), rule10s("g", "temp", nil)))
	require.True(t, push(t, e, 8000, 15, 30))
	var c clock
	require.Equal(t, []point{{T: 9999, V: 45}}, outputs(t, e.Close(c.at(11000), nil))[reqOut])
}

// TestReloadRefusesInvalid: an invalid configuration changes nothing.
func TestReloadRefusesInvalid(t *testing.T) {
	e := mustEngine(t, rule10s("r", "c_total", nil))
	_, err := e.Reload(Config{Rules: []RuleConfig{rule10s("r", "c_total", func(r *RuleConfig) { r.By = []string{"svc"} })}}, time.UnixMilli(0))
	require.ErrorContains(t, err, "by and without")
	require.True(t, push(t, e, 1000, 0, 0))
	require.Equal(t, []string{"r"}, []string{e.set.Load().rules[0].cfg.Name})
	require.Empty(t, e.set.Load().retiring)
}

// TestReloadConcurrentChangesKeepTotals: pushers send counters (with
// resets) while the rule is changed back and forth between two versions
// writing the same output series, and intervals close: the output ends at
// exactly the inputs' increase. Run with -race.
func TestReloadConcurrentChangesKeepTotals(t *testing.T) {
	versions := []RuleConfig{
		rule10s("r", "c_total", nil),
		rule10s("r", "c_total", func(r *RuleConfig) { r.Interval = model.Duration(5 * time.Second) }),
		rule10s("r", "c_total", func(r *RuleConfig) { r.MaxDelay = model.Duration(3 * time.Second) }),
	}
	e := mustEngine(t, versions[0])
	var now atomic.Int64 // ms
	now.Store(1000)
	const pods = 4
	var (
		wg   sync.WaitGroup
		stop atomic.Bool
		want [pods]float64 // the exact increase of each pod
		mu   sync.Mutex
		outs []Output
	)
	pushPod := func(p int, ts int64, v float64) {
		b, names := batchOf(t, counter(pod("c_total", "pod", fmt.Sprint(p), "svc", "x"), ts, v))
		_, taken := e.Process("t", b, names)
		if taken.Series != 1 {
			t.Errorf("pod %d at %d not taken", p, ts)
		}
	}
	last := [pods]struct {
		t int64
		v float64
	}{}
	for p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, lastT := 0.0, int64(0)
			for n := 0; !stop.Load(); {
				ts := now.Load()
				if ts <= lastT {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				n++
				if n%37 == 36 {
					v = 1 // a reset: the increase is the new value
					want[p] += 1
				} else {
					v += float64(p + 1)
					if lastT != 0 {
						want[p] += float64(p + 1)
					}
				}
				pushPod(p, ts, v)
				lastT = ts
			}
			last[p].t, last[p].v = lastT, v
		}()
	}
	// The driver: time goes on, intervals close, and the rule changes.
	for step := range 300 {
		ts := now.Add(250)
		if step%20 == 10 {
			_, err := e.Reload(Config{Rules: []RuleConfig{versions[(step/20)%len(versions)]}}, time.UnixMilli(ts))
			require.NoError(t, err)
		}
		o := e.Close(time.UnixMilli(ts), nil)
		mu.Lock()
		outs = append(outs, o...)
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	// One last sample per pod, in time: a sample that came late (its
	// interval had closed) carries its increase to the next one.
	end := now.Add(1000)
	for p := range pods {
		pushPod(p, end, last[p].v+1)
		want[p]++
	}
	outs = append(outs, e.Close(time.UnixMilli(end+60_000), nil)...)
	pts := outputs(t, outs)[reqOut]
	require.NotEmpty(t, pts)
	total := 0.0
	for _, w := range want {
		total += w
	}
	for i := 1; i < len(pts); i++ {
		require.Greater(t, pts[i].T, pts[i-1].T, "one point per timestamp, in order: %s", fmtPoints(pts))
		require.GreaterOrEqual(t, pts[i].V, pts[i-1].V, "monotonic: %s", fmtPoints(pts))
	}
	require.Equal(t, total, pts[len(pts)-1].V, "the output ends at the inputs' exact increase")
	require.Empty(t, e.set.Load().retiring)
}

// TestReloadConcurrentAddRemove adds and removes rules while samples flow
// and intervals close (for -race): each entry is taken or written, never
// both, and once the last removal's interval closed nothing is held.
func TestReloadConcurrentAddRemove(t *testing.T) {
	e, err := NewEngine(Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	var now atomic.Int64
	now.Store(1000)
	var wg sync.WaitGroup
	var stop atomic.Bool
	for p := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lastT := int64(0)
			for v := 0.0; !stop.Load(); v++ {
				ts := now.Load()
				if ts <= lastT {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				b, names := batchOf(t, counter(pod("c_total", "pod", fmt.Sprint(p), "svc", "x"), ts, v),
					gauge(pod("temp", "pod", fmt.Sprint(p)), ts, v))
				kept, taken := e.Process("t", b, names)
				if taken.Series+countEntries(kept) != 2 {
					t.Errorf("an entry was both taken and written, or lost: taken %d, written %d", taken.Series, countEntries(kept))
				}
				lastT = ts
			}
		}()
	}
	configs := [][]RuleConfig{
		{rule10s("r", "c_total", nil)},
		{rule10s("r", "c_total", nil), rule10s("g", "temp", func(r *RuleConfig) { r.Outputs = gaugeOutputs })},
		{rule10s("g", "temp", nil)},
		nil,
	}
	for step := range 200 {
		ts := now.Add(250)
		if step%10 == 5 {
			_, err := e.Reload(Config{Rules: configs[(step/10)%len(configs)]}, time.UnixMilli(ts))
			require.NoError(t, err)
		}
		e.Close(time.UnixMilli(ts), nil)
		_ = e.Stats()
		time.Sleep(100 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	_, err = e.Reload(Config{}, time.UnixMilli(now.Load()))
	require.NoError(t, err)
	e.Close(time.UnixMilli(now.Load()+60_000), nil)
	require.False(t, e.HasRules())
	require.Empty(t, e.set.Load().retiring)
	require.Zero(t, e.groups.Load())
}

func countEntries(b []byte) int {
	n := 0
	for it := record.NewIter(b); it.Next(); {
		n++
	}
	return n
}

// TestDescriberSet: the rules test API's describer shows the rules of the
// last Set only; invalid rules show none.
func TestDescriberSet(t *testing.T) {
	var d Describer
	ls := pod("c_total", "pod", "a", "svc", "x")
	require.Nil(t, d.Describe("t", ls, "counter", false), "the zero value describes none")
	require.NoError(t, d.Set([]RuleConfig{rule10s("start", "c_total", nil)}))
	require.Equal(t, "start", d.Describe("t", ls, "counter", false)[0].Rule)
	require.NoError(t, d.Set([]RuleConfig{rule10s("reloaded", "c_total", nil)}))
	effects := d.Describe("t", ls, "counter", false)
	require.Len(t, effects, 1)
	require.Equal(t, "reloaded", effects[0].Rule, "nothing of the start-up rules is left")
	require.ErrorContains(t, d.Set([]RuleConfig{{Name: "bad", Match: "c_total", Interval: model.Duration(time.Second)}}), "by or without")
	require.Nil(t, d.Describe("t", ls, "counter", false))
	require.NoError(t, d.Set(nil))
	require.Nil(t, d.Describe("t", ls, "counter", false))
}
