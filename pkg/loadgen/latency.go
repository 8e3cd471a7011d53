package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histogram layout: values are recorded in microseconds. Values below
// linearBuckets get an exact bucket; larger values keep their top subBits+1
// significant bits, i.e. a relative error below 1/2^subBits (~3%).
const (
	subBits       = 5
	subBuckets    = 1 << subBits // 32
	linearBuckets = 2 * subBuckets
	maxExponent   = 40
	numBuckets    = linearBuckets + maxExponent*subBuckets
)

// latencyHistogram is an HDR-like log-linear histogram of durations. Record
// and snapshot are safe for concurrent use.
type latencyHistogram struct {
	counts [numBuckets]atomic.Uint64
	maxUS  atomic.Uint64
}

// bucketOf returns the bucket index of v microseconds.
func bucketOf(v uint64) int {
	if v < linearBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // >= 1
	sub := int(v>>uint(shift)) - subBuckets
	idx := linearBuckets + (shift-1)*subBuckets + sub
	return min(idx, numBuckets-1)
}

// bucketUpper returns the largest value (µs) that falls into bucket idx.
func bucketUpper(idx int) uint64 {
	if idx < linearBuckets {
		return uint64(idx)
	}
	idx -= linearBuckets
	shift := idx/subBuckets + 1
	sub := uint64(idx%subBuckets + subBuckets)
	return (sub+1)<<uint(shift) - 1
}

// record adds one duration.
func (h *latencyHistogram) record(d time.Duration) {
	v := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(v)].Add(1)
	for {
		cur := h.maxUS.Load()
		if v <= cur || h.maxUS.CompareAndSwap(cur, v) {
			return
		}
	}
}

// LatencySummary holds latency percentiles in milliseconds.
type LatencySummary struct {
	// P50 is the median latency.
	P50 float64 `json:"p50"`
	// P90 is the 90th percentile latency.
	P90 float64 `json:"p90"`
	// P99 is the 99th percentile latency.
	P99 float64 `json:"p99"`
	// Max is the largest recorded latency (exact).
	Max float64 `json:"max"`
}

// summary computes percentiles from a snapshot of the counts; a percentile
// is reported as its bucket's upper bound, capped at the exact maximum.
func (h *latencyHistogram) summary() LatencySummary {
	var counts [numBuckets]uint64
	var total uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	maxUS := h.maxUS.Load()
	if total == 0 {
		return LatencySummary{}
	}
	quantile := func(q float64) float64 {
		rank := uint64(q*float64(total) + 0.5)
		rank = min(max(rank, 1), total)
		var cum uint64
		for i, c := range counts {
			cum += c
			if cum >= rank {
				return usToMS(min(bucketUpper(i), maxUS))
			}
		}
		return usToMS(maxUS)
	}
	return LatencySummary{P50: quantile(0.5), P90: quantile(0.9), P99: quantile(0.99), Max: usToMS(maxUS)}
}

func usToMS(us uint64) float64 { return float64(us) / 1000 }
