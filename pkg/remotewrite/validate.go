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
	problemSamplesAndHistograms
	problemNoData
	problemExemplarOddRefs
	problemExemplarRefRange
	problemMetadataRefRange
	problemLabelNameTooLong
	problemLabelValueTooLong
	problemTooManyLabels
	problemTooManyBuckets
)

// problem describes why a series is invalid. The strings point into the
// request's symbols, so building one does not allocate.
type problem struct {
	kind   problemKind
	n1, n2 int
	s1, s2 string
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
	case problemUnsortedLabels:
		return fmt.Sprintf("label names not sorted: %s comes after %s", quote(p.s1), quote(p.s2))
	case problemMissingName:
		return "missing __name__ label"
	case problemEmptyName:
		return "empty __name__ label value"
	case problemSamplesAndHistograms:
		return fmt.Sprintf("series has both samples (%d) and histograms (%d); Remote Write 2.0 allows only one kind per series", p.n1, p.n2)
	case problemNoData:
		return "series has no samples, histograms or exemplars"
	case problemExemplarOddRefs:
		return fmt.Sprintf("exemplar %d: odd number of label references (%d)", p.n1, p.n2)
	case problemExemplarRefRange:
		return fmt.Sprintf("exemplar %d: label reference %d is out of range of the symbols table (%d entries)", p.n1, p.n2, symbolCount)
	case problemMetadataRefRange:
		return fmt.Sprintf("metadata %s reference %d is out of range of the symbols table (%d entries)", p.s1, p.n1, symbolCount)
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

// validateRequest removes invalid series from req in place and reports how
// many were removed and a message naming the first. NaN, ±Inf and stale
// marker values are valid. Symbols of removed series stay in the table.
// lim bounds the series' sizes (nil: unbounded); pre holds problems the
// decoder already found, by series index (it does not intern an over-long
// string, so the series' symbols alone no longer show it).
func validateRequest(req *writev2.Request, lim *limits, pre map[int]problem) (rejected int, first string) {
	kept := req.Timeseries[:0]
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		p, found := pre[i]
		if !found {
			p = lim.series(req.Symbols, ts)
		}
		if p.kind == problemNone {
			p = validateSeries(req.Symbols, ts)
		}
		if p.kind == problemNone {
			kept = append(kept, *ts)
			continue
		}
		if rejected == 0 {
			first = "series " + renderLabels(req.Symbols, ts.LabelsRefs) + ": " + p.String(len(req.Symbols))
		}
		rejected++
	}
	clear(req.Timeseries[len(kept):])
	req.Timeseries = kept
	return rejected, first
}

// validateSeries checks one series against symbols.
func validateSeries(symbols []string, ts *writev2.TimeSeries) problem {
	refs := ts.LabelsRefs
	if len(refs)%2 != 0 {
		return problem{kind: problemOddLabelRefs, n1: len(refs)}
	}
	var (
		prev    string
		hasName bool
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
				return problem{kind: problemUnsortedLabels, s1: name, s2: prev}
			}
		}
		prev = name
		if name == metricNameLabel {
			if symbols[valueRef] == "" {
				return problem{kind: problemEmptyName}
			}
			hasName = true
		}
	}
	if !hasName {
		return problem{kind: problemMissingName}
	}
	switch {
	case len(ts.Samples) > 0 && len(ts.Histograms) > 0:
		return problem{kind: problemSamplesAndHistograms, n1: len(ts.Samples), n2: len(ts.Histograms)}
	case len(ts.Samples) == 0 && len(ts.Histograms) == 0 && len(ts.Exemplars) == 0:
		return problem{kind: problemNoData}
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
	}
	if int64(ts.Metadata.HelpRef) >= int64(len(symbols)) {
		return problem{kind: problemMetadataRefRange, s1: "help", n1: int(ts.Metadata.HelpRef)}
	}
	if int64(ts.Metadata.UnitRef) >= int64(len(symbols)) {
		return problem{kind: problemMetadataRefRange, s1: "unit", n1: int(ts.Metadata.UnitRef)}
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
	if quoted {
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
