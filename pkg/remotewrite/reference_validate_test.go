package remotewrite

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// referenceVerdict returns nil if Prometheus 3.16's remote-write receiver
// and TSDB would store all of ts: every sample, histogram and exemplar. It
// runs Prometheus's own code on the path of storage/remote/write_handler.go
// (appendV2): the labels are desymbolized and sorted (writev2 ToLabels),
// need a __name__, must be valid under scheme (labels.IsValid) and unique
// (HasDuplicateLabelNames); the metadata refs must resolve (ToMetadata); a
// sample or histogram must be present; a histogram finer than schema 8 is
// reduced to 8 as the receiver's appender does, then checked with
// Validate() as the head appender does; each exemplar is parsed
// (ToExemplar) and checked as tsdb/exemplar.go validateExemplar checks it
// (unique names, at most 128 runes), mirrored here because importing tsdb
// would add dependencies to the module. A panic counts as a refusal.
func referenceVerdict(symbols []string, ts *writev2.TimeSeries, scheme model.ValidationScheme) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reference panicked: %v", r)
		}
	}()
	b := labels.NewScratchBuilder(0)
	ls, err := ts.ToLabels(&b, symbols)
	if err != nil {
		return err
	}
	if !ls.Has(model.MetricNameLabel) || !ls.IsValid(scheme) {
		return fmt.Errorf("invalid metric name or labels, got %v", ls)
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("duplicated label %s", name)
	}
	if _, err := ts.ToMetadata(symbols); err != nil {
		return err
	}
	if len(ts.Samples) == 0 && len(ts.Histograms) == 0 {
		return errors.New("TimeSeries must contain at least one sample or histogram")
	}
	for i := range ts.Histograms {
		if err := referenceHistogram(&ts.Histograms[i]); err != nil {
			return fmt.Errorf("histogram %d: %w", i, err)
		}
	}
	for i := range ts.Exemplars {
		e, err := ts.Exemplars[i].ToExemplar(&b, symbols)
		if err != nil {
			return err
		}
		if name, dup := e.Labels.HasDuplicateLabelNames(); dup {
			return fmt.Errorf("exemplar label name %q is not unique", name)
		}
		n := 0
		e.Labels.Range(func(l labels.Label) { n += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value) })
		if n > exemplar.ExemplarMaxLabelSetLength {
			return fmt.Errorf("exemplar labels are %d runes long", n)
		}
	}
	return nil
}

// referenceHistogram converts h as the receiver does, reduces a schema
// above 8 (but within the reserved range) to 8 and validates the result.
func referenceHistogram(h *writev2.Histogram) error {
	reduce := func(s int32) bool {
		return histogram.IsExponentialSchemaReserved(s) && s > histogram.ExponentialSchemaMax
	}
	if h.IsFloatHistogram() {
		fh := h.ToFloatHistogram()
		if reduce(fh.Schema) {
			if err := fh.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
				return err
			}
		}
		return fh.Validate()
	}
	ih := h.ToIntHistogram()
	if reduce(ih.Schema) {
		if err := ih.ReduceResolution(histogram.ExponentialSchemaMax); err != nil {
			return err
		}
	}
	return ih.Validate()
}

// referenceScheme is the Prometheus validation scheme matching opts.
func referenceScheme(opts validationOpts) model.ValidationScheme {
	if opts.legacyNames {
		return model.LegacyValidation
	}
	return model.UTF8Validation
}
