package record

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// AppendV2 appends the entry of a Remote Write 2.0 series whose references
// point into symbols (validated: every reference in range) with ls as its
// labels, which the caller resolved (and may have rewritten) from ts. It
// is the way in for series that did not take a cheaper path; scratch is
// reused between calls and returned.
func AppendV2(dst, scratch []byte, ls labels.Labels, ts *writev2.TimeSeries, symbols []string) (out, scratchOut []byte) {
	flags := byte(0)
	s := AppendLabels(scratch[:0], ls)
	for i := range ts.Samples {
		smp := &ts.Samples[i]
		if smp.StartTimestamp != 0 {
			flags |= FlagExtras
		}
		s = appendMessage(s, fieldSamples, func(b []byte) []byte {
			b = appendDouble(b, fieldSampleValue, smp.Value)
			b = appendInt64(b, fieldSampleTS, smp.Timestamp)
			return appendInt64(b, fieldSampleStart, smp.StartTimestamp)
		})
	}
	for i := range ts.Exemplars {
		e := &ts.Exemplars[i]
		s = appendMessage(s, fieldExemplars, func(b []byte) []byte {
			for j := 0; j+1 < len(e.LabelsRefs); j += 2 {
				b = AppendLabel(b, symbols[e.LabelsRefs[j]], symbols[e.LabelsRefs[j+1]])
			}
			b = appendDouble(b, fieldExemplarValue, e.Value)
			return appendInt64(b, fieldExemplarTS, e.Timestamp)
		})
	}
	for i := range ts.Histograms {
		h := &ts.Histograms[i]
		if h.StartTimestamp != 0 {
			flags |= FlagExtras
		}
		s = appendMessage(s, fieldHistograms, func(b []byte) []byte {
			// Histogram fields 1-16 are numbered as in Remote Write 1.0.
			n := h.Size()
			at := len(b)
			b = append(b, make([]byte, n)...)
			if _, err := h.MarshalToSizedBuffer(b[at:]); err != nil {
				panic(fmt.Sprintf("marshal a histogram into its own size: %v", err))
			}
			return b
		})
	}
	if md := ts.Metadata; md.Type != 0 || md.HelpRef != 0 || md.UnitRef != 0 {
		flags |= FlagExtras
		s = appendMessage(s, MetadataField, func(b []byte) []byte {
			b = appendUvarintField(b, fieldMetaType, uint64(md.Type))
			if help := symbols[md.HelpRef]; help != "" {
				b = appendStringField(b, fieldMetaHelp, help)
			}
			if unit := symbols[md.UnitRef]; unit != "" {
				b = appendStringField(b, fieldMetaUnit, unit)
			}
			return b
		})
	}
	dst = AppendHeader(dst, ls.Hash(), flags, len(ts.Samples), len(ts.Histograms), len(ts.Exemplars), len(s))
	return append(dst, s...), s
}

// FromV2 converts a validated Remote Write 2.0 request (every reference in
// range, as forward.ValidateRequest checks) into a batch, appended to dst.
func FromV2(dst []byte, req *writev2.Request) []byte {
	sb := labels.NewScratchBuilder(16)
	var scratch []byte
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		sb.Reset()
		for j := 0; j+1 < len(ts.LabelsRefs); j += 2 {
			sb.Add(req.Symbols[ts.LabelsRefs[j]], req.Symbols[ts.LabelsRefs[j+1]])
		}
		sb.Sort()
		dst, scratch = AppendV2(dst, scratch, sb.Labels(), ts, req.Symbols)
	}
	return dst
}
