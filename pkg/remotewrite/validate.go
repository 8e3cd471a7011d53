package remotewrite

import (
	"fmt"
	"strconv"
	"strings"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

const (
	metricNameLabel = "__name__"
	// maxRenderedValue bounds each string quoted into an error message.
	maxRenderedValue = 128
	// maxRenderedLabels bounds the rendered label set of an invalid series.
	maxRenderedLabels = 1024
)

// problemKind enumerates per-series validation failures; details are only
// formatted for the first invalid series of a request.
type problemKind int

const (
	problemNone problemKind = iota
	problemOddLabelRefs
	problemLabelRefRange
	problemEmptyLabelName
	problemDuplicateLabel
	problemUnsortedLabels
	problemMissingName
	problemEmptyName
	problemNoData
	problemExemplarOddRefs
	problemExemplarRefRange
	problemMetadataRefRange
	problemExemplarsOnly
	problemLabelNameUTF8
	problemLabelNameLegacy
	problemMetricNameLegacy
	problemLabelValueUTF8
	problemUnitUTF8
	problemExemplarLabelLength
	problemExemplarDuplicateLabel
	problemExemplarEmptyLabelName
	problemHistogram
	problemHistogramSchema
	problemHistogramSpans
	problemHistogramSpanOffset
	problemHistogramSpanRange
	problemHistogramNegativeBucket
	problemHistogramNegativeCount
	problemHistogramCountMismatch
	problemHistogramCountTooSmall
	problemHistogramBoundsOrder
	problemHistogramBoundsTooFew
	problemLabelNameTooLong
	problemLabelValueTooLong
	problemTooManyLabels
	problemTooManyBuckets
)

// problem describes why a series is invalid. The strings point into the
// request's symbols or are constants, so building one does not allocate.
type problem struct {
	kind       problemKind
	n1, n2, n3 int
	s1, s2     string
	f1, f2     float64
}

func (p problem) String(symbolCount int) string {
	switch p.kind {
	case problemOddLabelRefs:
		return fmt.Sprintf("odd number of label references (%d): label refs must be name/value pairs", p.n1)
	case problemLabelRefRange:
		return fmt.Sprintf("label reference %d is out of range of the symbols table (%d entries)", p.n1, symbolCount)
	case problemEmptyLabelName:
		return "empty label name"
	case problemDuplicateLabel:
		return fmt.Sprintf("duplicate label name %s", quote(p.s1))
	case problemUnsortedLabels: // sorted by validateRequest, never reported
		return "label names not sorted"
	case problemMissingName:
		return "missing __name__ label"
	case problemEmptyName:
		return "empty __name__ label value"
	case problemNoData:
		return "series has no samples or histograms"
	case problemExemplarOddRefs:
		return fmt.Sprintf("exemplar %d: odd number of label references (%d)", p.n1, p.n2)
	case problemExemplarRefRange:
		return fmt.Sprintf("exemplar %d: label reference %d is out of range of the symbols table (%d entries)", p.n1, p.n2, symbolCount)
	case problemMetadataRefRange:
		return fmt.Sprintf("metadata %s reference %d is out of range of the symbols table (%d entries)", p.s1, p.n1, symbolCount)
	case problemExemplarsOnly, problemLabelNameUTF8, problemLabelNameLegacy, problemMetricNameLegacy,
		problemLabelValueUTF8, problemUnitUTF8, problemExemplarLabelLength, problemExemplarDuplicateLabel,
		problemExemplarEmptyLabelName:
		return p.contentString()
	case problemHistogram, problemHistogramSchema, problemHistogramSpans, problemHistogramSpanOffset,
		problemHistogramSpanRange, problemHistogramNegativeBucket, problemHistogramNegativeCount,
		problemHistogramCountMismatch, problemHistogramCountTooSmall, problemHistogramBoundsOrder,
		problemHistogramBoundsTooFew:
		return p.histogramString()
	case problemLabelNameTooLong:
		return fmt.Sprintf("label name %s is %d bytes long, over the limit of %d; raise -%s to accept it",
			quote(p.s1), p.n1, p.n2, p.s2)
	case problemLabelValueTooLong:
		return fmt.Sprintf("the value of label %s is %d bytes long, over the limit of %d; raise -%s to accept it",
			quote(p.s1), p.n1, p.n2, p.s2)
	case problemTooManyLabels:
		return fmt.Sprintf("series has %d labels, over the limit of %d per series; raise -%s to accept it",
			p.n1, p.n2, p.s2)
	case problemTooManyBuckets:
		return fmt.Sprintf("a native histogram has %d buckets, over the limit of %d; raise -%s to accept it",
			p.n1, p.n2, p.s2)
	default:
		return "valid"
	}
}

// validationOpts are the settings of series validation.
type validationOpts struct {
	// legacyNames restricts metric and label names to the legacy charset.
	legacyNames bool
	// symbolsUTF8 is set by validateRequest when every symbol of the
	// request is valid UTF-8, so no label needs its own UTF-8 check.
	symbolsUTF8 bool
	// lim bounds the series' sizes (nil: unbounded).
	lim *limits
	// pre holds problems the decoder already found, by series index: it
	// does not intern an over-long string, so the series' symbols alone no
	// longer show it.
	pre map[int]problem
	// origin, when not nil, holds one value per series (where it came
	// from) and is kept in step as series are removed and split; sortedOut
	// then receives, for each kept series, whether it was sorted.
	origin    *[]int32
	sortedOut *[]bool
}

// validateRequest removes invalid series from req in place and reports how
// many were removed and a message naming the first. NaN, ±Inf and stale
// marker values are valid. Symbols of removed series stay in the table.
//
// It is as liberal as Prometheus's own receiver where that one is: a series
// whose label names are not sorted is sorted in place (sorted counts them),
// and a series carrying both samples and histograms is split into two
// series with the same labels and metadata, the exemplars staying with the
// samples. See docs/validation.md.
func validateRequest(req *writev2.Request, opts validationOpts) (rejected int, first string, sorted int) {
	kept := req.Timeseries[:0]
	var histHalves []writev2.TimeSeries // split-off histograms; rare
	var keptOrigin, halvesOrigin []int32
	var keptSorted, halvesSorted []bool
	if opts.origin != nil {
		keptOrigin = (*opts.origin)[:0]
	}
	if opts.sortedOut != nil {
		keptSorted = (*opts.sortedOut)[:0] // an output only: reused
	}
	opts.symbolsUTF8 = validUTF8(req.Symbols)
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		p, found := opts.pre[i]
		if !found {
			p = opts.lim.series(req.Symbols, ts)
		}
		if p.kind == problemNone {
			p = validateSeries(req.Symbols, ts, opts)
		}
		wasSorted := false
		if p.kind == problemUnsortedLabels {
			if p = sortLabelRefs(req.Symbols, ts.LabelsRefs); p.kind == problemNone {
				sorted++
				wasSorted = true
			}
		}
		if p.kind == problemNone {
			if len(ts.Samples) > 0 && len(ts.Histograms) > 0 {
				histHalves = append(histHalves, writev2.TimeSeries{
					LabelsRefs: ts.LabelsRefs, Histograms: ts.Histograms, Metadata: ts.Metadata,
				})
				ts.Histograms = nil
				if opts.origin != nil {
					halvesOrigin = append(halvesOrigin, (*opts.origin)[i])
					halvesSorted = append(halvesSorted, wasSorted)
				}
			}
			kept = append(kept, *ts)
			if opts.origin != nil {
				keptOrigin = append(keptOrigin, (*opts.origin)[i])
				keptSorted = append(keptSorted, wasSorted)
			}
			continue
		}
		if rejected == 0 {
			first = "series " + renderLabels(req.Symbols, ts.LabelsRefs) + ": " + p.String(len(req.Symbols))
		}
		rejected++
	}
	clear(req.Timeseries[len(kept):])
	req.Timeseries = append(kept, histHalves...)
	if opts.origin != nil {
		*opts.origin = append(keptOrigin, halvesOrigin...)
		if opts.sortedOut != nil {
			*opts.sortedOut = append(keptSorted, halvesSorted...)
		}
	}
	return rejected, first, sorted
}

// validateSeries checks one series against symbols. It returns
// problemUnsortedLabels only when that is the series' only problem once its
// labels are sorted, apart from duplicate names (see sortLabelRefs).
func validateSeries(symbols []string, ts *writev2.TimeSeries, opts validationOpts) problem {
	refs := ts.LabelsRefs
	if len(refs)%2 != 0 {
		return problem{kind: problemOddLabelRefs, n1: len(refs)}
	}
	var (
		prev     string
		hasName  bool
		unsorted bool
	)
	for i := 0; i < len(refs); i += 2 {
		nameRef, valueRef := refs[i], refs[i+1]
		if int64(nameRef) >= int64(len(symbols)) {
			return problem{kind: problemLabelRefRange, n1: int(nameRef)}
		}
		if int64(valueRef) >= int64(len(symbols)) {
			return problem{kind: problemLabelRefRange, n1: int(valueRef)}
		}
		name := symbols[nameRef]
		if name == "" {
			return problem{kind: problemEmptyLabelName}
		}
		if i > 0 {
			if name == prev {
				return problem{kind: problemDuplicateLabel, s1: name}
			}
			if name < prev {
				unsorted = true
			}
		}
		prev = name
		if name == metricNameLabel {
			if symbols[valueRef] == "" {
				return problem{kind: problemEmptyName}
			}
			hasName = true
		}
		if opts.legacyNames || !opts.symbolsUTF8 {
			if p := checkLabelText(name, symbols[valueRef], opts); p.kind != problemNone {
				return p
			}
		}
	}
	if !hasName {
		return problem{kind: problemMissingName}
	}
	switch {
	case len(ts.Samples) == 0 && len(ts.Histograms) == 0 && len(ts.Exemplars) > 0:
		return problem{kind: problemExemplarsOnly, n1: len(ts.Exemplars)}
	case len(ts.Samples) == 0 && len(ts.Histograms) == 0:
		return problem{kind: problemNoData}
	}
	if len(ts.Histograms) > 0 {
		if p := checkHistograms(ts.Histograms); p.kind != problemNone {
			return p
		}
	}
	for i := range ts.Exemplars {
		erefs := ts.Exemplars[i].LabelsRefs
		if len(erefs)%2 != 0 {
			return problem{kind: problemExemplarOddRefs, n1: i, n2: len(erefs)}
		}
		for _, r := range erefs {
			if int64(r) >= int64(len(symbols)) {
				return problem{kind: problemExemplarRefRange, n1: i, n2: int(r)}
			}
		}
		if p := checkExemplarLabels(symbols, i, erefs); p.kind != problemNone {
			return p
		}
	}
	if int64(ts.Metadata.HelpRef) >= int64(len(symbols)) {
		return problem{kind: problemMetadataRefRange, s1: "help", n1: int(ts.Metadata.HelpRef)}
	}
	if int64(ts.Metadata.UnitRef) >= int64(len(symbols)) {
		return problem{kind: problemMetadataRefRange, s1: "unit", n1: int(ts.Metadata.UnitRef)}
	}
	if !opts.symbolsUTF8 {
		if p := checkUnitText(symbols[ts.Metadata.UnitRef]); p.kind != problemNone {
			return p
		}
	}
	if unsorted {
		return problem{kind: problemUnsortedLabels}
	}
	return problem{}
}

// renderLabels renders label refs like {__name__="x", a="b"}, tolerating
// odd counts and out-of-range refs, bounded to about maxRenderedLabels bytes.
func renderLabels(symbols []string, refs []uint32) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := 0; i < len(refs); i += 2 {
		if sb.Len() > maxRenderedLabels {
			sb.WriteString(", …")
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(symbolOrRef(symbols, refs[i], false))
		sb.WriteByte('=')
		if i+1 < len(refs) {
			sb.WriteString(symbolOrRef(symbols, refs[i+1], true))
		} else {
			sb.WriteString("<missing value>")
		}
	}
	sb.WriteByte('}')
	return sb.String()
}

func symbolOrRef(symbols []string, ref uint32, quoted bool) string {
	if int64(ref) >= int64(len(symbols)) {
		return "<ref " + strconv.FormatUint(uint64(ref), 10) + " out of range>"
	}
	s := truncate(symbols[ref], maxRenderedValue)
	// Names outside the legacy charset are quoted, as Prometheus renders
	// UTF-8 names, so an invalid name shows escaped.
	if quoted || !isLegacyName(s, false) {
		return strconv.Quote(s)
	}
	return s
}

func quote(s string) string { return strconv.Quote(truncate(s, maxRenderedValue)) }

// truncate shortens s to at most n bytes plus an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
