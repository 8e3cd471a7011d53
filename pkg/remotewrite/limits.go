package remotewrite

import (
	"google.golang.org/protobuf/encoding/protowire"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// limits are the per-series size bounds, with the flags that raise them,
// enforced while decoding: before a label set is built, interned or passed
// on. A zero bound is no bound (tests and the reference fuzzers use none).
type limits struct {
	labelNameLength, labelValueLength int
	labelsPerSeries, seriesPerRequest int
	bucketsPerHistogram               int

	labelNameFlag, labelValueFlag, labelsFlag, seriesFlag, bucketsFlag string
}

// newLimits takes the bounds of cfg, whose flags are registered under
// flagPrefix.
func newLimits(cfg *Config, flagPrefix string) *limits {
	return &limits{
		labelNameLength:     cfg.MaxLabelNameLength,
		labelValueLength:    cfg.MaxLabelValueLength,
		labelsPerSeries:     cfg.MaxLabelNamesPerSeries,
		seriesPerRequest:    cfg.MaxSeriesPerRequest,
		bucketsPerHistogram: cfg.MaxBucketsPerHistogram,
		labelNameFlag:       flagPrefix + flagMaxLabelNameLength,
		labelValueFlag:      flagPrefix + flagMaxLabelValueLength,
		labelsFlag:          flagPrefix + flagMaxLabelNamesPerSeries,
		seriesFlag:          flagPrefix + flagMaxSeriesPerRequest,
		bucketsFlag:         flagPrefix + flagMaxBucketsPerHistogram,
	}
}

// over reports whether n exceeds the bound max (0: unbounded).
func over(n, max int) bool { return max > 0 && n > max }

// label checks one label's name and value lengths. The caller sets the
// problem's s1 to the (truncated) label name when there is a problem.
func (l *limits) label(nameLen, valueLen int) problem {
	if l == nil {
		return problem{}
	}
	switch {
	case over(nameLen, l.labelNameLength):
		return problem{kind: problemLabelNameTooLong, n1: nameLen, n2: l.labelNameLength, s2: l.labelNameFlag}
	case over(valueLen, l.labelValueLength):
		return problem{kind: problemLabelValueTooLong, n1: valueLen, n2: l.labelValueLength, s2: l.labelValueFlag}
	}
	return problem{}
}

// series checks the bounds of one decoded series: its label count and
// lengths, and the buckets of each native histogram.
func (l *limits) series(symbols []string, ts *writev2.TimeSeries) problem {
	if l == nil {
		return problem{}
	}
	if n := len(ts.LabelsRefs) / 2; over(n, l.labelsPerSeries) {
		return problem{kind: problemTooManyLabels, n1: n, n2: l.labelsPerSeries, s2: l.labelsFlag}
	}
	for i := 0; i+1 < len(ts.LabelsRefs); i += 2 {
		n, v := ts.LabelsRefs[i], ts.LabelsRefs[i+1]
		if int64(n) >= int64(len(symbols)) || int64(v) >= int64(len(symbols)) {
			break // validateSeries names the bad reference
		}
		if p := l.label(len(symbols[n]), len(symbols[v])); p.kind != problemNone {
			p.s1 = truncate(symbols[n], maxRenderedValue)
			return p
		}
	}
	for i := range ts.Histograms {
		h := &ts.Histograms[i]
		n := max(len(h.PositiveDeltas)+len(h.NegativeDeltas), len(h.PositiveCounts)+len(h.NegativeCounts),
			len(h.PositiveSpans)+len(h.NegativeSpans), len(h.CustomValues))
		if over(n, l.bucketsPerHistogram) {
			return problem{kind: problemTooManyBuckets, n1: n, n2: l.bucketsPerHistogram, s2: l.bucketsFlag}
		}
	}
	return problem{}
}

// tooManySeries is the error for a request with more than seriesPerRequest
// series, seen after n.
func (l *limits) tooManySeries(n int) error {
	return &LimitError{What: "series in the request", Unit: "series", Flag: l.seriesFlag,
		Limit: int64(l.seriesPerRequest), Got: int64(n), AtLeast: true}
}

// fieldV2Timeseries is io.prometheus.write.v2.Request.timeseries.
const fieldV2Timeseries = 5

// countSeriesV2 counts the series of a marshalled 2.0 request without
// decoding them, so that a request over the bound is refused before the
// generated decoder builds it. Wire errors are left to that decoder.
func (l *limits) countSeriesV2(payload []byte) error {
	if l == nil || l.seriesPerRequest <= 0 {
		return nil
	}
	n := 0
	for len(payload) > 0 {
		num, typ, m := protowire.ConsumeTag(payload)
		if m < 0 {
			return nil
		}
		payload = payload[m:]
		m = protowire.ConsumeFieldValue(num, typ, payload)
		if m < 0 {
			return nil
		}
		payload = payload[m:]
		if num == fieldV2Timeseries && typ == protowire.BytesType {
			if n++; n > l.seriesPerRequest {
				return l.tooManySeries(n)
			}
		}
	}
	return nil
}
