package preview

import "math"

// distinct estimates the distinct outputs D of a population of n series
// from a uniform sample of k of them (without replacement) in which d
// distinct outputs were seen, assuming outputs of equal size n/D: the D
// whose expected number of distinct outputs in such a sample is d (the
// method of moments). d == k (no two sampled series merge) answers n: the
// sample shows no reduction. The answer is within [d, n].
func distinct(n float64, k, d int) float64 {
	switch {
	case k <= 0 || d <= 0:
		return 0
	case n <= float64(k):
		return float64(d)
	case d >= k:
		return n
	}
	lo, hi := float64(d), n
	for range 100 {
		mid := (lo + hi) / 2
		if expectedDistinct(n, k, mid) < float64(d) {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-3 {
			break
		}
	}
	return (lo + hi) / 2
}

// expectedDistinct is the expected number of distinct outputs in a sample
// of k of n series falling into D outputs of n/D series each.
func expectedDistinct(n float64, k int, outputs float64) float64 {
	size := n / outputs
	// P(an output is missed) = prod_{i<k} (1 - size/(n-i)).
	logMiss := 0.0
	for i := range k {
		p := size / (n - float64(i))
		if p >= 1 {
			return outputs
		}
		logMiss += math.Log1p(-p)
	}
	return outputs * (1 - math.Exp(logMiss))
}
