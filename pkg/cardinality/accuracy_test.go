package cardinality

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAccuracy compares estimates with exact counts. The bound is three
// standard errors of HyperLogLog, 3 × 1.04/sqrt(2^p): 2.44 % at the default
// precision 14. Small counts stay in the sparse representation, which is
// exact up to hash collisions at 2^25 buckets. The 10M case runs without
// -short only.
func TestAccuracy(t *testing.T) {
	sizes := []int{1_000, 10_000, 100_000, 1_000_000, 10_000_000}
	cfg := testConfig()
	bound := 3 * 1.04 / math.Sqrt(float64(uint64(1)<<cfg.Precision))
	t.Logf("bound: 3 x 1.04/sqrt(2^%d) = %.2f%%", cfg.Precision, bound*100)
	t.Logf("| series | metric estimate | error | tenant estimate | error |")
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if n > 1_000_000 && testing.Short() {
				t.Skip("10M series take a while; run without -short")
			}
			c := newClock()
			tr := newTracker(t, cfg, c)
			r := rand.New(rand.NewPCG(uint64(n), 42))
			now := c.now()
			s := Series{Tenant: "t", Metric: "m", Samples: 1}
			for range n {
				s.Hash = r.Uint64()
				tr.Observe(&s, now)
			}
			row := metricRow(t, tr, "t", "m")
			ten, err := tr.Tenants(context.Background(), Query{})
			require.NoError(t, err)
			me := float64(row.Series)/float64(n) - 1
			te := float64(ten[0].Series)/float64(n) - 1
			t.Logf("| %d | %d | %+.3f%% | %d | %+.3f%% |", n, row.Series, me*100, ten[0].Series, te*100)
			require.LessOrEqual(t, math.Abs(me), bound)
			require.LessOrEqual(t, math.Abs(te), bound)
		})
	}
}

// TestMergeAcrossThreeIngesters checks that the union of three ingesters'
// tenant sketches estimates exactly what one tracker that saw every series
// estimates, including a metric both owners saw around a ring change.
func TestMergeAcrossThreeIngesters(t *testing.T) {
	for name, n := range map[string]int{"sparse": 900, "dense": 120_000} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			cfg := testConfig()
			single := newTracker(t, cfg, c)
			parts := []*Tracker{newTracker(t, cfg, c), newTracker(t, cfg, c), newTracker(t, cfg, c)}
			now := c.now()
			r := rand.New(rand.NewPCG(7, uint64(n)))
			for i := range n {
				metric := fmt.Sprint("m", i%30)
				s := &Series{Tenant: "t", Metric: metric, Hash: r.Uint64(), Samples: 1}
				owner := (i % 30) % 3
				single.Observe(s, now)
				parts[owner].Observe(s, now)
				if i%30 == 0 && i%7 == 0 {
					parts[(owner+1)%3].Observe(s, now) // the previous owner saw it too
				}
			}
			q := Query{Sketches: true, Limit: -1}
			var tparts [][]TenantCardinality
			var mparts [][]MetricCardinality
			var sketches [][]byte
			for _, p := range parts {
				ts, err := p.Tenants(context.Background(), q)
				require.NoError(t, err)
				tparts = append(tparts, ts)
				ms, err := p.Metrics(context.Background(), q)
				require.NoError(t, err)
				mparts = append(mparts, ms)
				sk, err := p.TenantSketch("t", now)
				require.NoError(t, err)
				sketches = append(sketches, sk)
			}
			want, err := single.Tenants(context.Background(), Query{})
			require.NoError(t, err)
			got, err := MergeTenants(tparts, Query{})
			require.NoError(t, err)
			require.Equal(t, want[0].Series, got[0].Series)
			est, err := MergeSketches(sketches...)
			require.NoError(t, err)
			require.Equal(t, want[0].Series, est)

			wantM, err := single.Metrics(context.Background(), Query{Limit: 10, Sort: SortSeries})
			require.NoError(t, err)
			gotM, err := MergeMetrics(mparts, Query{Limit: 10, Sort: SortSeries})
			require.NoError(t, err)
			require.Len(t, gotM, 10)
			for i := range wantM {
				require.Equal(t, wantM[i].Name, gotM[i].Name)
				require.Equal(t, wantM[i].Series, gotM[i].Series)
				require.Nil(t, gotM[i].SeriesSketch)
			}
			// Summing per-ingester numbers would double count m0.
			var sum uint64
			for _, p := range tparts {
				sum += p[0].Series
			}
			require.Greater(t, sum, got[0].Series)
		})
	}
}
