package preview

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDistinct(t *testing.T) {
	cases := map[string]struct {
		n       float64
		k, d    int
		want    float64
		epsilon float64
	}{
		"no merge in the sample": {n: 5000, k: 64, d: 64, want: 5000, epsilon: 0},
		"whole population":       {n: 40, k: 40, d: 7, want: 7, epsilon: 0},
		"one output":             {n: 5000, k: 64, d: 1, want: 1, epsilon: 0.01},
		"nothing":                {n: 5000, k: 0, d: 0, want: 0, epsilon: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := distinct(tc.n, tc.k, tc.d)
			if tc.want == 0 {
				require.Zero(t, got)
				return
			}
			require.InEpsilon(t, tc.want, got, tc.epsilon+1e-9)
		})
	}
}

// TestDistinctRecoversOutputs: sampling 64 of n series that fall into D
// equal outputs, the estimate is close to D on average when outputs are
// large (what a label drop does to an exploding label); when they hold
// few series each, a sample of 64 rarely sees two of one output and the
// estimate errs towards n: it understates the saving, never overstates it.
func TestDistinctRecoversOutputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		n, outputs int
		tolerance  float64
	}{
		{3000, 10, 0.05}, {3000, 30, 0.10}, {3000, 300, 0.35}, {6400, 3200, -1},
	} {
		sum := 0.0
		const trials = 200
		for range trials {
			perm := rng.Perm(tc.n)[:64]
			seen := map[int]bool{}
			for _, s := range perm {
				seen[s%tc.outputs] = true
			}
			sum += distinct(float64(tc.n), 64, len(seen))
		}
		mean := sum / trials
		t.Logf("n=%d outputs=%d: mean estimate %.1f", tc.n, tc.outputs, mean)
		if tc.tolerance < 0 {
			require.GreaterOrEqual(t, mean, float64(tc.outputs))
			require.LessOrEqual(t, mean, float64(tc.n))
			continue
		}
		require.InEpsilon(t, float64(tc.outputs), mean, tc.tolerance)
	}
}
