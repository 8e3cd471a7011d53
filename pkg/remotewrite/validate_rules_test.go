package remotewrite

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// seriesSpec describes one series of a validation rule case.
type seriesSpec struct {
	labels    []string // name/value pairs, in the order sent
	noSamples bool     // no float sample
	hists     []writev2.Histogram
	exemplars [][]string // label name/value pairs of each exemplar
	unit      string
}

// request builds a request holding a valid series, s, and another valid
// series, and returns it with the index of s.
func (s seriesSpec) request() (*writev2.Request, int) {
	st := writev2.NewSymbolTable()
	valid := func(name string) writev2.TimeSeries {
		return writev2.TimeSeries{LabelsRefs: v2Refs(&st, "__name__", name), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}
	}
	ts := writev2.TimeSeries{LabelsRefs: v2Refs(&st, s.labels...), Histograms: s.hists}
	if !s.noSamples {
		ts.Samples = []writev2.Sample{{Value: 2, Timestamp: 2}}
	}
	for _, e := range s.exemplars {
		ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: v2Refs(&st, e...), Value: 1, Timestamp: 2})
	}
	if s.unit != "" {
		ts.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, UnitRef: st.Symbolize(s.unit)}
	}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{valid("before"), ts, valid("after")}}
	req.Symbols = st.Symbols()
	return req, 1
}

// name is a series of metric "m" with labels kv (pairs), in that order.
func named(kv ...string) []string { return append([]string{"__name__", "m"}, kv...) }

// intHist is a valid integer exponential histogram changed by edit.
func intHist(edit func(h *writev2.Histogram)) writev2.Histogram {
	h := writev2.Histogram{
		Count: &writev2.Histogram_CountInt{CountInt: 7}, Sum: 12.5, Schema: 0, ZeroThreshold: 0.001,
		ZeroCount:      &writev2.Histogram_ZeroCountInt{ZeroCountInt: 1},
		PositiveSpans:  []writev2.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		PositiveDeltas: []int64{2, 1, -2}, // 2, 3, 1
		Timestamp:      2,
	}
	if edit != nil {
		edit(&h)
	}
	return h
}

// floatHist is intHist with float counts, changed by edit.
func floatHist(edit func(h *writev2.Histogram)) writev2.Histogram {
	h := writev2.Histogram{
		Count: &writev2.Histogram_CountFloat{CountFloat: 7}, Sum: 12.5, Schema: 0, ZeroThreshold: 0.001,
		ZeroCount:      &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: 1},
		PositiveSpans:  []writev2.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		PositiveCounts: []float64{2, 3, 1},
		NegativeSpans:  []writev2.BucketSpan{{Offset: -1, Length: 1}},
		NegativeCounts: []float64{0.5},
		Timestamp:      2,
	}
	if edit != nil {
		edit(&h)
	}
	return h
}

// customHist is a valid integer histogram with custom buckets (NHCB),
// changed by edit.
func customHist(edit func(h *writev2.Histogram)) writev2.Histogram {
	h := writev2.Histogram{
		Count: &writev2.Histogram_CountInt{CountInt: 6}, Sum: 2.75, Schema: -53,
		PositiveSpans:  []writev2.BucketSpan{{Offset: 0, Length: 3}},
		PositiveDeltas: []int64{1, 2, -1}, // 1, 3, 2
		CustomValues:   []float64{0.1, 0.5, 1},
		Timestamp:      2,
	}
	if edit != nil {
		edit(&h)
	}
	return h
}

func hists(hs ...writev2.Histogram) seriesSpec {
	return seriesSpec{labels: named(), noSamples: true, hists: hs}
}

func schema(s int32) func(*writev2.Histogram) { return func(h *writev2.Histogram) { h.Schema = s } }

// ruleCase is one direction (accepted or refused) of one validation rule
// of docs/validation.md.
type ruleCase struct {
	series seriesSpec
	legacy bool
	// wantMsg is the reason promgov gives; "" means the series is accepted.
	wantMsg string
	// wantLabels is the accepted series' labels after validation.
	wantLabels string
	// wantSplit: the series is accepted as two, samples and histograms.
	wantSplit bool
	// stricter explains a refusal of a series Prometheus 3.x stores.
	stricter string
}

func validationRuleCases() map[string]ruleCase {
	longRunes := func(n int, r string) string { return strings.Repeat(r, n) }
	many := func(n int, reverse bool) []string {
		kv := []string{}
		for i := range n {
			j := i
			if reverse {
				j = n - 1 - i
			}
			kv = append(kv, fmt.Sprintf("l%03d", j), "v")
		}
		return named(kv...)
	}
	return map[string]ruleCase{
		// Label order and uniqueness.
		"unsorted names/vmagent order is sorted": {series: seriesSpec{labels: named("quantile", "0", "instance", "h:9100", "job", "node")},
			wantLabels: `{__name__="m", instance="h:9100", job="node", quantile="0"}`},
		"unsorted names/__name__ last is sorted": {series: seriesSpec{labels: []string{"job", "node", "__name__", "m"}},
			wantLabels: `{__name__="m", job="node"}`},
		"unsorted names/100 labels reversed are sorted": {series: seriesSpec{labels: many(100, true)}},
		"sorted names/accepted":                         {series: seriesSpec{labels: many(100, false)}},
		"duplicate names/adjacent refused":              {series: seriesSpec{labels: named("a", "1", "a", "2")}, wantMsg: `duplicate label name "a"`},
		"duplicate names/after sorting refused":         {series: seriesSpec{labels: named("a", "1", "b", "2", "a", "3")}, wantMsg: `duplicate label name "a"`},
		"duplicate names/unique accepted":               {series: seriesSpec{labels: named("a", "1", "b", "2")}},
		"metric name/missing refused":                   {series: seriesSpec{labels: []string{"a", "1"}}, wantMsg: "missing __name__ label"},
		"metric name/empty refused":                     {series: seriesSpec{labels: []string{"__name__", ""}}, wantMsg: "empty __name__ label value"},
		"label name/empty refused":                      {series: seriesSpec{labels: named("", "1")}, wantMsg: "empty label name"},
		"label value/empty accepted":                    {series: seriesSpec{labels: named("a", "")}},

		// UTF-8 scheme (the default).
		"utf8/label name invalid refused":                    {series: seriesSpec{labels: named("bad-name\xff", "v")}, wantMsg: `label name "bad-name\xff" is not valid UTF-8`},
		"utf8/label name UTF-8 accepted":                     {series: seriesSpec{labels: named("größe.ü", "v")}},
		"utf8/label value invalid refused":                   {series: seriesSpec{labels: named("a", "\xc3\x28")}, wantMsg: `value of label "a" is not valid UTF-8: "\xc3("`},
		"utf8/label value UTF-8 accepted":                    {series: seriesSpec{labels: named("a", "日本語")}},
		"utf8/metric name invalid refused":                   {series: seriesSpec{labels: []string{"__name__", "m\xfe"}}, wantMsg: `value of label "__name__" is not valid UTF-8`},
		"utf8/metric name UTF-8 accepted":                    {series: seriesSpec{labels: []string{"__name__", "http.server.duration °C"}}},
		"utf8/exemplar label name not name-checked accepted": {series: seriesSpec{labels: named(), exemplars: [][]string{{"trace.id", "x"}}}},
		"utf8/metadata unit invalid refused":                 {series: seriesSpec{labels: named(), unit: "s\xff"}, wantMsg: `metadata unit "s\xff" is not valid UTF-8`, stricter: "a backend with type-and-unit-labels turns the unit into a label value and refuses it"},
		"utf8/metadata unit UTF-8 accepted":                  {series: seriesSpec{labels: named(), unit: "°C"}},

		// Legacy scheme.
		"legacy/label name with dot refused":          {legacy: true, series: seriesSpec{labels: named("a.b", "1")}, wantMsg: `label name "a.b" is invalid under the legacy name validation scheme`},
		"legacy/label name with colon refused":        {legacy: true, series: seriesSpec{labels: named("a:b", "1")}, wantMsg: `label name "a:b" is invalid`},
		"legacy/label name leading digit refused":     {legacy: true, series: seriesSpec{labels: named("1a", "1")}, wantMsg: `label name "1a" is invalid`},
		"legacy/label name accepted":                  {legacy: true, series: seriesSpec{labels: named("_a1", "1", "Z_9", "2")}},
		"legacy/metric name with dot refused":         {legacy: true, series: seriesSpec{labels: []string{"__name__", "http.requests"}}, wantMsg: `metric name "http.requests" is invalid under the legacy name validation scheme`},
		"legacy/metric name leading digit refused":    {legacy: true, series: seriesSpec{labels: []string{"__name__", "1m"}}, wantMsg: `metric name "1m" is invalid`},
		"legacy/metric name non-ASCII refused":        {legacy: true, series: seriesSpec{labels: []string{"__name__", "größe"}}, wantMsg: `metric name "größe" is invalid`},
		"legacy/metric name with colon accepted":      {legacy: true, series: seriesSpec{labels: []string{"__name__", ":job:rate5m"}}},
		"legacy/label value UTF-8 accepted":           {legacy: true, series: seriesSpec{labels: named("a", "größe.ü")}},
		"legacy/label value invalid UTF-8 refused":    {legacy: true, series: seriesSpec{labels: named("a", "\xff")}, wantMsg: `value of label "a" is not valid UTF-8`},
		"legacy/UTF-8 label name accepted under utf8": {series: seriesSpec{labels: named("a.b", "1", "a:b", "2")}},

		// What a series carries.
		"data/exemplar only refused":          {series: seriesSpec{labels: named(), noSamples: true, exemplars: [][]string{{"trace_id", "1"}}}, wantMsg: "series has 1 exemplars but no samples or histograms"},
		"data/nothing refused":                {series: seriesSpec{labels: named(), noSamples: true}, wantMsg: "series has no samples or histograms"},
		"data/samples and histograms split":   {series: seriesSpec{labels: named(), hists: []writev2.Histogram{intHist(nil)}, exemplars: [][]string{{"trace_id", "1"}}}, wantSplit: true},
		"data/samples with exemplar accepted": {series: seriesSpec{labels: named(), exemplars: [][]string{{"trace_id", "1"}}}},

		// Exemplar labels.
		"exemplar/128 runes accepted":            {series: seriesSpec{labels: named(), exemplars: [][]string{{"trace_id", longRunes(120, "ü")}}}},
		"exemplar/129 runes refused":             {series: seriesSpec{labels: named(), exemplars: [][]string{{"trace_id", longRunes(121, "a")}}}, wantMsg: "exemplar 0: label names and values are longer than 128 runes together"},
		"exemplar/129 runes over labels refused": {series: seriesSpec{labels: named(), exemplars: [][]string{{"a", longRunes(63, "x"), "b", longRunes(64, "y")}}}, wantMsg: "exemplar 0: label names and values are longer than 128 runes"},
		"exemplar/duplicate name refused":        {series: seriesSpec{labels: named(), exemplars: [][]string{{}, {"trace_id", "1", "span_id", "2", "trace_id", "3"}}}, wantMsg: `exemplar 1: duplicate label name "trace_id"`},
		"exemplar/empty name refused":            {series: seriesSpec{labels: named(), exemplars: [][]string{{"", "x"}}}, wantMsg: "exemplar 0: empty label name"},
		"exemplar/repeated empty name refused":   {series: seriesSpec{labels: named(), exemplars: [][]string{make([]string, 400)}}, wantMsg: "exemplar 0: empty label name"},
		"exemplar/unsorted names accepted":       {series: seriesSpec{labels: named(), exemplars: [][]string{{"trace_id", "1", "span_id", "2"}}}},
		"exemplar/no labels accepted":            {series: seriesSpec{labels: named(), exemplars: [][]string{{}}}},

		// Native histograms: counts, spans and buckets agree.
		"histogram/valid integer accepted":               {series: hists(intHist(nil))},
		"histogram/valid float accepted":                 {series: hists(floatHist(nil))},
		"histogram/count mismatch refused":               {series: hists(intHist(func(h *writev2.Histogram) { h.Count = &writev2.Histogram_CountInt{CountInt: 8} })), wantMsg: "histogram 0: count is 8 but the buckets hold 7 observations"},
		"histogram/second histogram refused":             {series: hists(intHist(nil), intHist(func(h *writev2.Histogram) { h.ZeroCount = nil })), wantMsg: "histogram 1: count is 7 but the buckets hold 6 observations"},
		"histogram/count above buckets NaN sum accepted": {series: hists(intHist(func(h *writev2.Histogram) { h.Sum = math.NaN(); h.Count = &writev2.Histogram_CountInt{CountInt: 9} }))},
		"histogram/count below buckets NaN sum refused":  {series: hists(intHist(func(h *writev2.Histogram) { h.Sum = math.NaN(); h.Count = &writev2.Histogram_CountInt{CountInt: 6} })), wantMsg: "count is 6 but the buckets hold 7 observations, more than the count"},
		"histogram/float count not summed accepted":      {series: hists(floatHist(func(h *writev2.Histogram) { h.Count = &writev2.Histogram_CountFloat{CountFloat: 100} }))},
		"histogram/spans need more buckets refused":      {series: hists(intHist(func(h *writev2.Histogram) { h.PositiveSpans[1].Length = 2 })), wantMsg: "histogram 0: positive spans need 4 buckets, the histogram has 3"},
		"histogram/spans need fewer buckets refused":     {series: hists(floatHist(func(h *writev2.Histogram) { h.NegativeSpans = nil })), wantMsg: "negative spans need 0 buckets, the histogram has 1"},
		"histogram/negative later span offset refused":   {series: hists(intHist(func(h *writev2.Histogram) { h.PositiveSpans[1].Offset = -1 })), wantMsg: "positive span 2 has a negative offset (-1)"},
		"histogram/negative first span offset accepted":  {series: hists(intHist(func(h *writev2.Histogram) { h.PositiveSpans[0].Offset = -5 }))},
		"histogram/first offset MinInt32 refused":        {series: hists(intHist(func(h *writev2.Histogram) { h.PositiveSpans[0].Offset = math.MinInt32 })), wantMsg: "positive span 1 reaches bucket index -2147483648"},
		"histogram/bucket index past int32 refused":      {series: hists(intHist(func(h *writev2.Histogram) { h.PositiveSpans[1].Offset = math.MaxInt32 })), wantMsg: "positive span 2 reaches bucket index 2147483649, outside the int32 range"},
		"histogram/negative integer bucket refused":      {series: hists(intHist(func(h *writev2.Histogram) { h.PositiveDeltas = []int64{2, 1, -4} })), wantMsg: "positive bucket 3 has a negative observation count (-1)"},
		"histogram/negative float bucket refused":        {series: hists(floatHist(func(h *writev2.Histogram) { h.NegativeCounts = []float64{-0.5} })), wantMsg: "negative bucket 1 has a negative observation count (-0.5)"},
		"histogram/negative float count refused":         {series: hists(floatHist(func(h *writev2.Histogram) { h.Count = &writev2.Histogram_CountFloat{CountFloat: -1} })), wantMsg: "histogram 0: count is negative (-1)"},
		"histogram/negative float zero count refused":    {series: hists(floatHist(func(h *writev2.Histogram) { h.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: -1} })), wantMsg: "zero bucket count is negative (-1)"},
		"histogram/NaN float count accepted":             {series: hists(floatHist(func(h *writev2.Histogram) { h.Count = &writev2.Histogram_CountFloat{CountFloat: math.NaN()} }))},
		"histogram/exponential with bounds refused":      {series: hists(intHist(func(h *writev2.Histogram) { h.CustomValues = []float64{1} })), wantMsg: "an exponential histogram must not have custom bucket bounds"},

		// Native histograms: schemas.
		"schema/-4 accepted":              {series: hists(intHist(schema(-4)))},
		"schema/8 accepted":               {series: hists(intHist(schema(8)))},
		"schema/9 accepted (reduced)":     {series: hists(intHist(schema(9)))},
		"schema/52 float accepted":        {series: hists(floatHist(schema(52)))},
		"schema/53 refused":               {series: hists(intHist(schema(53))), wantMsg: "histogram 0: schema 53 is not supported"},
		"schema/-5 refused":               {series: hists(intHist(schema(-5))), wantMsg: "histogram 0: schema -5 is not supported"},
		"schema/-52 refused":              {series: hists(floatHist(schema(-52))), wantMsg: "schema -52 is not supported"},
		"schema/9 invalid counts refused": {series: hists(intHist(func(h *writev2.Histogram) { h.Schema = 9; h.ZeroCount = nil })), wantMsg: "count is 7 but the buckets hold 6"},

		// Native histograms with custom buckets.
		"custom/valid accepted": {series: hists(customHist(nil))},
		"custom/float valid accepted": {series: hists(customHist(func(h *writev2.Histogram) {
			h.Count = &writev2.Histogram_CountFloat{CountFloat: 6}
			h.PositiveDeltas = nil
			h.PositiveCounts = []float64{1, 3, 2}
		}))},
		"custom/without bounds refused": {series: hists(customHist(func(h *writev2.Histogram) { h.CustomValues = nil })), wantMsg: "histogram 0: 0 custom bucket bounds are too few for spans covering 3 buckets"},
		"custom/one +Inf bucket without bounds accepted": {series: hists(customHist(func(h *writev2.Histogram) {
			h.CustomValues, h.PositiveSpans, h.PositiveDeltas, h.Count = nil, []writev2.BucketSpan{{Length: 1}}, []int64{6}, &writev2.Histogram_CountInt{CountInt: 6}
		}))},
		"custom/too few bounds refused":        {series: hists(customHist(func(h *writev2.Histogram) { h.CustomValues = []float64{0.1} })), wantMsg: "1 custom bucket bounds are too few for spans covering 3 buckets"},
		"custom/bounds not increasing refused": {series: hists(customHist(func(h *writev2.Histogram) { h.CustomValues = []float64{0.1, 0.1, 1} })), wantMsg: "custom bucket bounds must increase strictly: bound 1 (0.1) follows 0.1"},
		"custom/NaN bound refused":             {series: hists(customHist(func(h *writev2.Histogram) { h.CustomValues = []float64{0.1, math.NaN(), 1} })), wantMsg: "custom bucket bounds must not be NaN"},
		"custom/+Inf bound refused":            {series: hists(customHist(func(h *writev2.Histogram) { h.CustomValues = []float64{0.1, 0.5, math.Inf(1)} })), wantMsg: "the last custom bucket bound must not be +Inf"},
		"custom/-Inf first bound accepted":     {series: hists(customHist(func(h *writev2.Histogram) { h.CustomValues = []float64{math.Inf(-1), 0.5, 1} }))},
		"custom/zero count refused":            {series: hists(customHist(func(h *writev2.Histogram) { h.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: 1} })), wantMsg: "must have a zero count of 0"},
		"custom/zero threshold refused":        {series: hists(customHist(func(h *writev2.Histogram) { h.ZeroThreshold = 0.001 })), wantMsg: "must have a zero threshold of 0"},
		"custom/negative spans refused":        {series: hists(customHist(func(h *writev2.Histogram) { h.NegativeSpans = []writev2.BucketSpan{{Length: 0}} })), wantMsg: "must not have negative spans"},
		"custom/negative buckets refused":      {series: hists(customHist(func(h *writev2.Histogram) { h.NegativeDeltas = []int64{0} })), wantMsg: "must not have negative buckets"},
		"custom/negative span offset refused":  {series: hists(customHist(func(h *writev2.Histogram) { h.PositiveSpans[0].Offset = -1 })), wantMsg: "positive span 1 has a negative offset (-1)"},
		"custom/count mismatch refused":        {series: hists(customHist(func(h *writev2.Histogram) { h.PositiveDeltas = []int64{1, 2, 0} })), wantMsg: "count is 6 but the buckets hold 7 observations"},
	}
}

// TestValidationRules holds every rule of docs/validation.md, in both
// directions, to what promgov answers and to what Prometheus's own code
// (referenceVerdict) does with the same series.
func TestValidationRules(t *testing.T) {
	for name, tc := range validationRuleCases() {
		t.Run(name, func(t *testing.T) {
			opts := validationOpts{legacyNames: tc.legacy}
			req, target := tc.series.request()
			sent := req.Timeseries[target]
			sent.LabelsRefs = append([]uint32(nil), sent.LabelsRefs...) // validation sorts in place
			refErr := referenceVerdict(req.Symbols, &sent, referenceScheme(opts))

			rejected, first, sorted := validateRequest(req, opts)
			if tc.wantMsg != "" {
				require.Equal(t, 1, rejected, first)
				require.Contains(t, first, tc.wantMsg)
				require.Len(t, req.Timeseries, 2, "the valid series around it are kept")
				if tc.stricter == "" {
					require.Error(t, refErr, "promgov refuses a series Prometheus stores")
				} else {
					require.NoError(t, refErr, "the case claims to be stricter than Prometheus")
				}
			} else {
				require.Zero(t, rejected, first)
				require.NoError(t, refErr, "promgov accepts a series Prometheus refuses")
				want := 3
				if tc.wantSplit {
					want = 4
				}
				require.Len(t, req.Timeseries, want)
			}
			if tc.wantLabels != "" {
				require.Equal(t, 1, sorted)
				require.Equal(t, tc.wantLabels, renderLabels(req.Symbols, req.Timeseries[target].LabelsRefs))
			}
			// Whatever promgov keeps, Prometheus stores whole.
			for i := range req.Timeseries {
				require.NoError(t, referenceVerdict(req.Symbols, &req.Timeseries[i], referenceScheme(opts)), "kept series %d", i)
				require.Equal(t, problemNone, validateSeries(req.Symbols, &req.Timeseries[i], opts).kind, "kept series %d", i)
			}
		})
	}
}

func TestValidationSplitsSamplesAndHistograms(t *testing.T) {
	req, _ := seriesSpec{labels: named("job", "api"), hists: []writev2.Histogram{intHist(nil)}, exemplars: [][]string{{"trace_id", "1"}}, unit: "seconds"}.request()
	rejected, first, _ := validateRequest(req, validationOpts{})
	require.Zero(t, rejected, first)
	require.Len(t, req.Timeseries, 4)
	samples, histograms := req.Timeseries[1], req.Timeseries[3]
	require.Equal(t, renderLabels(req.Symbols, samples.LabelsRefs), renderLabels(req.Symbols, histograms.LabelsRefs))
	require.Len(t, samples.Samples, 1)
	require.Empty(t, samples.Histograms)
	require.Len(t, samples.Exemplars, 1, "exemplars stay with the samples")
	require.Empty(t, histograms.Samples)
	require.Len(t, histograms.Histograms, 1)
	require.Empty(t, histograms.Exemplars)
	require.Equal(t, samples.Metadata, histograms.Metadata, "both halves keep the series' metadata")
	s, h, e := Counts(req)
	require.Equal(t, []int{3, 1, 1}, []int{s, h, e})
}

// TestValidationValidPathDoesNotAllocate: the checks format nothing for a
// valid series, sorted or not.
func TestValidationValidPathDoesNotAllocate(t *testing.T) {
	for name, spec := range map[string]seriesSpec{
		"sorted":   {labels: named("instance", "h", "job", "node", "quantile", "0.5")},
		"unsorted": {labels: named("quantile", "0.5", "instance", "h", "job", "node")},
		"unsorted 40 labels": {labels: func() []string {
			var kv []string
			for i := 40; i > 0; i-- {
				kv = append(kv, fmt.Sprintf("l%02d", i), "v")
			}
			return named(kv...)
		}()},
		"histograms": hists(intHist(nil), floatHist(nil), customHist(nil)),
		"exemplars":  {labels: named(), exemplars: [][]string{{"trace_id", "abc", "span_id", "def"}}},
	} {
		t.Run(name, func(t *testing.T) {
			req, target := spec.request()
			ts := req.Timeseries[target]
			sent := append([]uint32(nil), ts.LabelsRefs...)
			failed := false
			allocs := testing.AllocsPerRun(100, func() {
				copy(ts.LabelsRefs, sent)
				p := validateSeries(req.Symbols, &ts, validationOpts{})
				if p.kind == problemUnsortedLabels {
					p = sortLabelRefs(req.Symbols, ts.LabelsRefs)
				}
				failed = failed || p.kind != problemNone
			})
			require.False(t, failed)
			require.Zero(t, allocs)
		})
	}
}

func TestValidUTF8(t *testing.T) {
	for name, tc := range map[string]struct {
		symbols []string
		want    bool
	}{
		"none":                     {want: true},
		"empty strings":            {symbols: []string{"", ""}, want: true},
		"ascii of every length":    {symbols: []string{"a", "ab", "abcdefg", "abcdefgh", "abcdefghi", strings.Repeat("x", 17)}, want: true},
		"multibyte":                {symbols: []string{"__name__", "größe", "日本語", "°C"}, want: true},
		"invalid in the tail":      {symbols: []string{"abcdefgh", "abcdefghi\xff"}, want: false},
		"invalid in a word":        {symbols: []string{"ab\xffdefghij"}, want: false},
		"truncated rune":           {symbols: []string{"ok", "\xe6\x97"}, want: false},
		"surrogate":                {symbols: []string{"\xed\xa0\x80"}, want: false},
		"ascii then invalid later": {symbols: []string{"a", "b", "c\xc3\x28"}, want: false},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, validUTF8(tc.symbols))
			for _, s := range tc.symbols {
				require.Equal(t, utf8.ValidString(s), validUTF8([]string{s}), "%q", s)
			}
		})
	}
}
