package remotewrite

import (
	"fmt"
	"math"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Native histogram schemas.
const (
	schemaCustomBuckets int32 = -53
	schemaExpMin        int32 = -4
	// schemaExpMaxReduced is the largest exponential schema a receiver
	// takes: Prometheus reduces 9 to 52 to 8 (the finest it stores), and a
	// histogram valid at its schema stays valid once reduced.
	schemaExpMaxReduced int32 = 52
)

// Static reasons of problemHistogram.
const (
	reasonCustomZeroCount     = "a custom-buckets histogram must have a zero count of 0"
	reasonCustomZeroThreshold = "a custom-buckets histogram must have a zero threshold of 0"
	reasonCustomNegSpans      = "a custom-buckets histogram must not have negative spans"
	reasonCustomNegBuckets    = "a custom-buckets histogram must not have negative buckets"
	reasonCustomBoundNaN      = "custom bucket bounds must not be NaN"
	reasonCustomBoundInf      = "the last custom bucket bound must not be +Inf (the +Inf bucket is implicit)"
	reasonExpCustomBounds     = "an exponential histogram must not have custom bucket bounds"
)

// checkHistograms checks every native histogram of a series the way
// Prometheus's histogram Validate does before storing it: spans agree with
// buckets, bucket counts are not negative, an integer histogram's count
// equals its buckets' total (or is at least that with a NaN sum), the
// schema is known, and custom buckets have strictly increasing, finite
// bounds enough for their spans. The first problem found names the
// histogram's index in n1.
func checkHistograms(hs []writev2.Histogram) problem {
	for i := range hs {
		if p := checkHistogram(&hs[i]); p.kind != problemNone {
			p.n1 = i
			return p
		}
	}
	return problem{}
}

func checkHistogram(h *writev2.Histogram) problem {
	isFloat := h.IsFloatHistogram()
	posBuckets, negBuckets := len(h.PositiveDeltas), len(h.NegativeDeltas)
	if isFloat {
		posBuckets, negBuckets = len(h.PositiveCounts), len(h.NegativeCounts)
	}
	var negCount uint64 // integer histograms only
	switch {
	case h.Schema == schemaCustomBuckets:
		if p := checkCustomBounds(h.CustomValues, h.PositiveSpans, posBuckets); p.kind != problemNone {
			return p
		}
		switch {
		case isFloat && h.GetZeroCountFloat() != 0, !isFloat && h.GetZeroCountInt() != 0:
			return problem{kind: problemHistogram, s1: reasonCustomZeroCount}
		case h.ZeroThreshold != 0:
			return problem{kind: problemHistogram, s1: reasonCustomZeroThreshold}
		case len(h.NegativeSpans) > 0:
			return problem{kind: problemHistogram, s1: reasonCustomNegSpans}
		case negBuckets > 0:
			return problem{kind: problemHistogram, s1: reasonCustomNegBuckets}
		}
	case h.Schema >= schemaExpMin && h.Schema <= schemaExpMaxReduced:
		if p := checkSpans("positive", h.PositiveSpans, posBuckets); p.kind != problemNone {
			return p
		}
		if p := checkSpans("negative", h.NegativeSpans, negBuckets); p.kind != problemNone {
			return p
		}
		if isFloat {
			if p := checkCounts("negative", h.NegativeCounts); p.kind != problemNone {
				return p
			}
			if z := h.GetZeroCountFloat(); z < 0 {
				return problem{kind: problemHistogramNegativeCount, s1: "zero bucket count", f1: z}
			}
		} else if p := checkDeltas("negative", h.NegativeDeltas, &negCount); p.kind != problemNone {
			return p
		}
		if len(h.CustomValues) > 0 {
			return problem{kind: problemHistogram, s1: reasonExpCustomBounds}
		}
	default:
		return problem{kind: problemHistogramSchema, n2: int(h.Schema)}
	}
	if isFloat {
		if c := h.GetCountFloat(); c < 0 {
			return problem{kind: problemHistogramNegativeCount, s1: "count", f1: c}
		}
		return checkCounts("positive", h.PositiveCounts)
	}
	var posCount uint64
	if p := checkDeltas("positive", h.PositiveDeltas, &posCount); p.kind != problemNone {
		return p
	}
	// Wrapping uint64 arithmetic, exactly as the reference adds them up.
	inBuckets, count := negCount+posCount+h.GetZeroCountInt(), h.GetCountInt()
	switch {
	case math.IsNaN(h.Sum) && inBuckets > count:
		return problem{kind: problemHistogramCountTooSmall, n2: int(inBuckets), n3: int(count)}
	case !math.IsNaN(h.Sum) && inBuckets != count:
		return problem{kind: problemHistogramCountMismatch, n2: int(inBuckets), n3: int(count)}
	}
	return problem{}
}

// checkSpans checks one side's spans of an exponential histogram against
// its bucket count: offsets after the first are not negative, and every
// bucket index fits in an int32.
func checkSpans(side string, spans []writev2.BucketSpan, buckets int) problem {
	var (
		need int
		end  int64 // one past the last bucket index, wide enough not to wrap
	)
	for i, s := range spans {
		if i > 0 && s.Offset < 0 {
			return problem{kind: problemHistogramSpanOffset, s1: side, n2: i + 1, n3: int(s.Offset)}
		}
		if i == 0 && s.Offset == math.MinInt32 {
			return problem{kind: problemHistogramSpanRange, s1: side, n2: 1, n3: int(s.Offset)}
		}
		need += int(s.Length)
		end += int64(s.Offset) + int64(s.Length)
		if end-1 > math.MaxInt32 {
			return problem{kind: problemHistogramSpanRange, s1: side, n2: i + 1, n3: int(end - 1)}
		}
	}
	if need != buckets {
		return problem{kind: problemHistogramSpans, s1: side, n2: need, n3: buckets}
	}
	return problem{}
}

// checkCustomBounds checks a custom-buckets histogram's bounds and spans.
func checkCustomBounds(bounds []float64, spans []writev2.BucketSpan, buckets int) problem {
	prev := math.Inf(-1)
	for i, b := range bounds {
		if math.IsNaN(b) {
			return problem{kind: problemHistogram, s1: reasonCustomBoundNaN}
		}
		if i > 0 && b <= prev {
			return problem{kind: problemHistogramBoundsOrder, n2: i, f1: prev, f2: b}
		}
		prev = b
	}
	if math.IsInf(prev, 1) {
		return problem{kind: problemHistogram, s1: reasonCustomBoundInf}
	}
	need, length := 0, 0
	for i, s := range spans {
		if s.Offset < 0 {
			return problem{kind: problemHistogramSpanOffset, s1: "positive", n2: i + 1, n3: int(s.Offset)}
		}
		need += int(s.Length)
		length += int(s.Length) + int(s.Offset)
	}
	if need != buckets {
		return problem{kind: problemHistogramSpans, s1: "positive", n2: need, n3: buckets}
	}
	if len(bounds)+1 < length {
		return problem{kind: problemHistogramBoundsTooFew, n2: len(bounds), n3: length}
	}
	return problem{}
}

// checkDeltas checks that the absolute counts of delta-encoded buckets are
// not negative and adds them to count.
func checkDeltas(side string, deltas []int64, count *uint64) problem {
	var last int64
	for i, d := range deltas {
		c := last + d
		if c < 0 {
			return problem{kind: problemHistogramNegativeBucket, s1: side, n2: i + 1, f1: float64(c)}
		}
		last = c
		*count += uint64(c)
	}
	return problem{}
}

// checkCounts checks that float bucket counts are not negative (NaN is not).
func checkCounts(side string, counts []float64) problem {
	for i, c := range counts {
		if c < 0 {
			return problem{kind: problemHistogramNegativeBucket, s1: side, n2: i + 1, f1: c}
		}
	}
	return problem{}
}

// histogramString formats the problems found by checkHistograms.
func (p problem) histogramString() string {
	var what string
	switch p.kind {
	case problemHistogram:
		what = p.s1
	case problemHistogramSchema:
		what = fmt.Sprintf("schema %d is not supported: use %d to 8 for exponential buckets (up to %d is reduced to 8) or %d for custom buckets",
			p.n2, schemaExpMin, schemaExpMaxReduced, schemaCustomBuckets)
	case problemHistogramSpans:
		what = fmt.Sprintf("%s spans need %d buckets, the histogram has %d", p.s1, p.n2, p.n3)
	case problemHistogramSpanOffset:
		what = fmt.Sprintf("%s span %d has a negative offset (%d)", p.s1, p.n2, p.n3)
	case problemHistogramSpanRange:
		what = fmt.Sprintf("%s span %d reaches bucket index %d, outside the int32 range", p.s1, p.n2, p.n3)
	case problemHistogramNegativeBucket:
		what = fmt.Sprintf("%s bucket %d has a negative observation count (%v)", p.s1, p.n2, p.f1)
	case problemHistogramNegativeCount:
		what = fmt.Sprintf("%s is negative (%v)", p.s1, p.f1)
	case problemHistogramCountMismatch:
		what = fmt.Sprintf("count is %d but the buckets hold %d observations", uint64(p.n3), uint64(p.n2))
	case problemHistogramCountTooSmall:
		what = fmt.Sprintf("count is %d but the buckets hold %d observations, more than the count", uint64(p.n3), uint64(p.n2))
	case problemHistogramBoundsOrder:
		what = fmt.Sprintf("custom bucket bounds must increase strictly: bound %d (%v) follows %v", p.n2, p.f2, p.f1)
	case problemHistogramBoundsTooFew:
		what = fmt.Sprintf("%d custom bucket bounds are too few for spans covering %d buckets", p.n2, p.n3)
	default:
		return "valid"
	}
	return fmt.Sprintf("histogram %d: %s", p.n1, what)
}
