package aggregate

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func counterRule() RuleConfig {
	return RuleConfig{Name: "r", Match: "http_requests_total", Without: []string{"pod"}, Interval: model.Duration(10 * time.Second), MaxDelay: model.Duration(2 * time.Second)}
}

// TestCounterSum: increases summed across input resets and churn; the
// output is monotonic and its total is exactly the inputs' increase.
func TestCounterSum(t *testing.T) {
	e := mustEngine(t, counterRule())
	push := func(ins ...in) Taken {
		b, names := batchOf(t, ins...)
		kept, taken := e.Process("t1", b, names)
		require.Empty(t, kept)
		return taken
	}
	a, b, c := pod("http_requests_total", "pod", "a", "svc", "x"), pod("http_requests_total", "pod", "b", "svc", "x"), pod("http_requests_total", "pod", "c", "svc", "x")
	push(counter(a, 1000, 10), counter(b, 1000, 100))  // bases
	push(counter(a, 5000, 15), counter(b, 5000, 110))  // +5 +10
	push(counter(a, 11000, 3), counter(b, 11000, 120)) // reset: +3, +10
	push(counter(b, 15000, 130), counter(c, 15000, 7)) // a gone, c new (base): +10
	push(counter(b, 21000, 140), counter(c, 21000, 9)) // +10 +2
	var c0 clock
	got := outputs(t, e.Close(c0.at(33000), nil))
	key := `t1/{__name__="http_requests_total:sum_without_pod", svc="x"}`
	require.Equal(t, []string{key}, keys(got))
	require.Equal(t, []point{{T: 9999, V: 15}, {T: 19999, V: 38}, {T: 29999, V: 50}}, got[key], fmtPoints(got[key]))
}
