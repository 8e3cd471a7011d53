package aggregate

import (
	"strconv"
	"testing"

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
