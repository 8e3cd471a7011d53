package aggregate

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// TestOverflow: refused series fold into one series per remaining label
// set, the overflowing label set to __overflow__, under the metric's name.
func TestOverflow(t *testing.T) {
	e, err := New(Config{Overflow: true, OverflowInterval: 10_000_000_000}, nil, nil)
	require.NoError(t, err)
	require.False(t, e.HasRules())
	labelsOf := func(_, metric string) ([]string, bool) { return []string{"pod"}, metric == "req_total" }
	var c clock
	for step, ts := range []int64{1000, 5000} {
		var ins []in
		for i := range 20 {
			ins = append(ins, counter(pod("req_total", "pod", strconv.Itoa(i), "svc", strconv.Itoa(i%2)), ts, float64((step+1)*i)))
		}
		ins = append(ins, counter(pod("other_total", "pod", "x"), ts, 1))
		b, _ := batchOf(t, ins...)
		taken, rest := e.Overflow("t", b, labelsOf)
		require.Equal(t, 20, taken.Series)
		require.NotEmpty(t, rest, "other_total does not overflow")
	}
	got := outputs(t, e.Close(c.at(12000), nil))
	// Increases: pod i grew by i; svc 0 has the even pods, svc 1 the odd.
	require.Equal(t, []point{{T: 9999, V: 90}}, got[`t/{__name__="req_total", pod="__overflow__", svc="0"}`])
	require.Equal(t, []point{{T: 9999, V: 100}}, got[`t/{__name__="req_total", pod="__overflow__", svc="1"}`])
	require.Len(t, got, 2)
}

func TestStats(t *testing.T) {
	e := mustEngine(t, rule10s("r", "c_total", nil))
	b, names := batchOf(t, counter(pod("c_total", "pod", "a", "svc", "x"), 1, 1), counter(pod("c_total", "pod", "b", "svc", "x"), 1, 1),
		counter(pod("c_total", "pod", "c", "svc", "y"), 1, 1))
	e.Process("t", b, names)
	require.Equal(t, []MetricStats{{Rule: "r", Tenant: "t", Metric: "c_total", InputSeries: 3, OutputSeries: 2}}, e.Stats())
}

// TestOverflowMaxDelay: aggregations_overflow_max_delay sets how long an
// overflow interval stays open after its end (default: interval/5).
func TestOverflowMaxDelay(t *testing.T) {
	for name, tc := range map[string]struct {
		maxDelay         time.Duration
		openAt, closedAt int64 // ms
	}{
		"default: a fifth of 10s": {0, 11_999, 12_000},
		"configured 5s":           {5 * time.Second, 14_999, 15_000},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := New(Config{Overflow: true, OverflowInterval: model.Duration(10 * time.Second), OverflowMaxDelay: model.Duration(tc.maxDelay)}, nil, nil)
			require.NoError(t, err)
			labelsOf := func(string, string) ([]string, bool) { return []string{"pod"}, true }
			for _, ts := range []int64{1000, 9000} {
				b, _ := batchOf(t, counter(pod("req_total", "pod", "a"), ts, float64(ts)))
				taken, _ := e.Overflow("t", b, labelsOf)
				require.Equal(t, 1, taken.Series)
			}
			var c clock
			require.Empty(t, e.Close(c.at(tc.openAt), nil), "still within max_delay")
			got := outputs(t, e.Close(c.at(tc.closedAt), nil))
			require.Equal(t, []point{{T: 9999, V: 8000}}, got[`t/{__name__="req_total", pod="__overflow__"}`])
		})
	}
}
