package cardinality

import (
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// TestLabelDropAccuracy checks SeriesWithout against exact counts. The
// metric has instance × path series, a constant job and a pod that is a
// function of the instance (one pod per instance); a second metric has no
// pod. Up to 2^precision (16,384) distinct series a sketch stays sparse and
// is near exact; beyond it is dense, with a standard error of
// 1.04/sqrt(2^14) = 0.81 %. The asserted bound is 3 standard errors,
// 2.44 %, for both.
func TestLabelDropAccuracy(t *testing.T) {
	cfg := testConfig()
	bound := 3 * 1.04 / math.Sqrt(float64(uint64(1)<<cfg.withoutPrecision()))
	t.Logf("bound: 3 x 1.04/sqrt(2^%d) = %.2f%%", cfg.withoutPrecision(), bound*100)
	t.Logf("| series | metric | dropped label | exact | SeriesWithout | error | metric's Series estimate |")
	for _, size := range []struct {
		name            string
		instances, path int
	}{
		{"5000", 100, 50},     // the sparse regime
		{"100000", 1000, 100}, // the dense regime
	} {
		t.Run(size.name, func(t *testing.T) {
			c := newClock()
			tr := newTracker(t, cfg, c)
			now := c.now()
			for i := range size.instances {
				inst := fmt.Sprintf("10.0.%d.%d:9100", i/256, i%256)
				for p := range size.path {
					path := fmt.Sprint("/api/v1/", p)
					for _, ls := range []labels.Labels{
						labels.FromStrings("__name__", "with_pod", "instance", inst, "path", path, "job", "x", "pod", fmt.Sprint("pod-", i)),
						labels.FromStrings("__name__", "without_pod", "instance", inst, "path", path, "job", "x"),
					} {
						tr.Observe(&Series{Tenant: "t", Metric: ls.Get("__name__"), Labels: ls, Samples: 1}, now)
					}
				}
			}
			n := uint64(size.instances * size.path)
			for name, tc := range map[string]struct {
				metric, label string
				want          uint64
			}{
				"job: constant, merges nothing":         {"with_pod", "job", n},
				"pod: a function of instance":           {"with_pod", "pod", n},
				"path":                                  {"with_pod", "path", uint64(size.instances)},
				"instance: pod still tells them apart":  {"with_pod", "instance", n},
				"instance, no pod":                      {"without_pod", "instance", uint64(size.path)},
				"path, no pod":                          {"without_pod", "path", uint64(size.instances)},
				"job, no pod: constant, merges nothing": {"without_pod", "job", n},
			} {
				t.Run(name, func(t *testing.T) {
					row := metricRow(t, tr, "t", tc.metric)
					var got *LabelCardinality
					for i := range row.Labels {
						if row.Labels[i].Name == tc.label {
							got = &row.Labels[i]
						}
					}
					require.NotNil(t, got, tc.label)
					e := float64(got.SeriesWithout)/float64(tc.want) - 1
					t.Logf("| %d | %s | %s | %d | %d | %+.3f%% | %d |", n, tc.metric, tc.label, tc.want, got.SeriesWithout, e*100, row.Series)
					require.LessOrEqual(t, math.Abs(e), bound)
					require.LessOrEqual(t, got.SeriesWithout, row.Series)
				})
			}
		})
	}
}
