package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBucketBounds(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 66, 127, 128, 1000, 12345, 1 << 20, 1<<40 + 7} {
		idx := bucketOf(v)
		require.GreaterOrEqual(t, idx, prev, "buckets are monotonic in v")
		prev = idx
		up := bucketUpper(idx)
		require.GreaterOrEqual(t, up, v, "v=%d", v)
		require.LessOrEqual(t, float64(up-v), float64(v)/subBuckets+1, "relative error bounded, v=%d", v)
		require.Equal(t, idx, bucketOf(up), "upper bound belongs to its bucket, v=%d", v)
	}
	require.Equal(t, numBuckets-1, bucketOf(^uint64(0)))
}

func TestLatencySummary(t *testing.T) {
	tests := map[string]struct {
		durations []time.Duration
		want      LatencySummary
		tolerance float64
	}{
		"empty": {want: LatencySummary{}},
		"single": {
			durations: []time.Duration{5 * time.Millisecond},
			want:      LatencySummary{P50: 5, P90: 5, P99: 5, Max: 5},
			tolerance: 5.0 / 32,
		},
		"1..100ms": {
			durations: func() []time.Duration {
				var ds []time.Duration
				for i := 1; i <= 100; i++ {
					ds = append(ds, time.Duration(i)*time.Millisecond)
				}
				return ds
			}(),
			want:      LatencySummary{P50: 50, P90: 90, P99: 99, Max: 100},
			tolerance: 100.0 / 32,
		},
		"outlier max is exact": {
			durations: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, 1234567 * time.Microsecond},
			want:      LatencySummary{P50: 1, P90: 1234.567, P99: 1234.567, Max: 1234.567},
			tolerance: 1.0 / 32,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var h latencyHistogram
			for _, d := range tc.durations {
				h.record(d)
			}
			got := h.summary()
			require.InDelta(t, tc.want.P50, got.P50, tc.tolerance)
			require.InDelta(t, tc.want.P90, got.P90, tc.tolerance)
			require.InDelta(t, tc.want.P99, got.P99, tc.tolerance)
			require.Equal(t, tc.want.Max, got.Max)
		})
	}
}

// TestWarmupLatencyApart checks that an attempt started before the warmup's
// end lands in the warmup summary and never in the steady-state one.
func TestWarmupLatencyApart(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := map[string]struct {
		warmupEnd        time.Time
		attempts         map[time.Time]time.Duration
		wantP99, wantWup float64
		wantWarmupShown  bool
	}{
		"no warmup: everything is steady state": {
			attempts: map[time.Time]time.Duration{t0: 40 * time.Millisecond, t0.Add(time.Second): time.Millisecond},
			wantP99:  40,
		},
		"the slow first attempt is warmup": {
			warmupEnd:       t0.Add(time.Second),
			attempts:        map[time.Time]time.Duration{t0: 40 * time.Millisecond, t0.Add(time.Second): time.Millisecond},
			wantP99:         1,
			wantWup:         40,
			wantWarmupShown: true,
		},
		"a warmup with no attempt in it": {
			warmupEnd:       t0,
			attempts:        map[time.Time]time.Duration{t0: 2 * time.Millisecond},
			wantP99:         2,
			wantWarmupShown: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := &stats{start: t0, warmupEnd: tc.warmupEnd}
			for began, d := range tc.attempts {
				s.attempt(204, began, d)
			}
			rep := s.report(ProtocolV1, t0.Add(2*time.Second))
			require.InDelta(t, tc.wantP99, rep.LatencyMS.P99, tc.wantP99/32)
			if !tc.wantWarmupShown {
				require.Nil(t, rep.WarmupLatencyMS)
				return
			}
			require.NotNil(t, rep.WarmupLatencyMS)
			require.InDelta(t, tc.wantWup, rep.WarmupLatencyMS.P99, tc.wantWup/32)
			require.Equal(t, int64(len(tc.attempts)), rep.StatusCounts["204"], "warmup attempts still count")
		})
	}
}
