package aggregate

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMergeStats(t *testing.T) {
	a := MetricStats{Rule: "r", Tenant: "t", Metric: "a_total", InputSeries: 5, OutputSeries: 2}
	b := MetricStats{Rule: "r", Tenant: "t", Metric: "b_total", InputSeries: 9, OutputSeries: 1}
	for _, tc := range []struct {
		name  string
		parts [][]MetricStats
		want  []MetricStats
	}{
		{name: "none", parts: nil, want: nil},
		{name: "one owner each, largest first", parts: [][]MetricStats{{a}, nil, {b}},
			want: []MetricStats{b, a}},
		{name: "a metric held by two owners mid-handoff adds up", parts: [][]MetricStats{{a}, {a}},
			want: []MetricStats{{Rule: "r", Tenant: "t", Metric: "a_total", InputSeries: 10, OutputSeries: 4}}},
		{name: "another tenant is another row", parts: [][]MetricStats{{a}, {{Rule: "r", Tenant: "u", Metric: "a_total", InputSeries: 5, OutputSeries: 2}}},
			want: []MetricStats{a, {Rule: "r", Tenant: "u", Metric: "a_total", InputSeries: 5, OutputSeries: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, MergeStats(tc.parts))
			require.Equal(t, tc.want, MergeStats([][]MetricStats{StatsFromProto(StatsToProto(tc.want))}), "the cluster service round-trips rows")
		})
	}
}
