package remotewrite

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func TestValidateSeriesV2(t *testing.T) {
	// Symbols: 0 "", 1 __name__, 2 up, 3 a, 4 b, 5 z
	symbols := []string{"", "__name__", "up", "a", "b", "z"}
	sample := []writev2.Sample{{Value: 1, Timestamp: 1}}
	hist := []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 1},
		ZeroCount: &writev2.Histogram_ZeroCountInt{ZeroCountInt: 1}, Timestamp: 1}}
	tests := []struct {
		name    string
		ts      writev2.TimeSeries
		wantMsg string // "" means valid
	}{
		{name: "valid sample", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: sample}},
		{name: "valid histogram", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Histograms: hist}},
		{name: "exemplar only", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2},
			Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 4}, Value: 1}}},
			wantMsg: `series {__name__="up"}: series has 1 exemplars but no samples or histograms`},
		{name: "valid empty label value", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, 0}, Samples: sample}},
		{name: "valid metadata refs", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: sample,
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 4, UnitRef: 5}}},
		{name: "odd label refs", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3}, Samples: sample},
			wantMsg: `series {__name__="up", a=<missing value>}: odd number of label references (3)`},
		{name: "name ref out of range", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 9, 4}, Samples: sample},
			wantMsg: `series {__name__="up", <ref 9 out of range>="b"}: label reference 9 is out of range of the symbols table (6 entries)`},
		{name: "value ref out of range", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, 100}, Samples: sample},
			wantMsg: "label reference 100 is out of range"},
		{name: "empty label name", ts: writev2.TimeSeries{LabelsRefs: []uint32{0, 4, 1, 2}, Samples: sample},
			wantMsg: `series {""="b", __name__="up"}: empty label name`},
		{name: "duplicate label", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2, 3, 4, 3, 5}, Samples: sample},
			wantMsg: `duplicate label name "a"`},
		{name: "duplicate label once sorted", ts: writev2.TimeSeries{LabelsRefs: []uint32{3, 4, 1, 2, 3, 5}, Samples: sample},
			wantMsg: `series {__name__="up", a="b", a="z"}: duplicate label name "a"`},
		{name: "missing name", ts: writev2.TimeSeries{LabelsRefs: []uint32{3, 4}, Samples: sample},
			wantMsg: `series {a="b"}: missing __name__ label`},
		{name: "no labels", ts: writev2.TimeSeries{Samples: sample},
			wantMsg: `series {}: missing __name__ label`},
		{name: "empty name", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 0}, Samples: sample},
			wantMsg: `series {__name__=""}: empty __name__ label value`},
		{name: "no data", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}},
			wantMsg: `series {__name__="up"}: series has no samples or histograms`},
		{name: "exemplar odd refs", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: sample,
			Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 4}}, {LabelsRefs: []uint32{3}}}},
			wantMsg: "exemplar 1: odd number of label references (1)"},
		{name: "exemplar ref out of range", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: sample,
			Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{3, 60}}}},
			wantMsg: "exemplar 0: label reference 60 is out of range"},
		{name: "help ref out of range", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: sample,
			Metadata: writev2.Metadata{HelpRef: 6}},
			wantMsg: "metadata help reference 6 is out of range"},
		{name: "unit ref out of range", ts: writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: sample,
			Metadata: writev2.Metadata{UnitRef: 1 << 31}},
			wantMsg: "metadata unit reference 2147483648 is out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			valid := writev2.TimeSeries{LabelsRefs: []uint32{1, 2}, Samples: sample}
			req := &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{valid, tc.ts, valid}}
			rejected, first, _ := validateRequest(req, validationOpts{})
			if tc.wantMsg == "" {
				require.Zero(t, rejected)
				require.Empty(t, first)
				require.Len(t, req.Timeseries, 3)
				return
			}
			require.Equal(t, 1, rejected)
			require.Contains(t, first, tc.wantMsg)
			require.Len(t, req.Timeseries, 2)
			for i := range req.Timeseries {
				require.Equal(t, valid.LabelsRefs, req.Timeseries[i].LabelsRefs)
			}
		})
	}
}

func TestValidateReportsFirstOfMany(t *testing.T) {
	symbols := []string{"", "__name__", "a", "b", "c"}
	s := []writev2.Sample{{Value: 1}}
	req := &writev2.Request{Symbols: symbols, Timeseries: []writev2.TimeSeries{
		{LabelsRefs: []uint32{1, 2}, Samples: s},
		{LabelsRefs: []uint32{2, 3}, Samples: s},       // missing name
		{LabelsRefs: []uint32{1, 3}},                   // no data
		{LabelsRefs: []uint32{1, 4}, Samples: s},       // valid
		{LabelsRefs: []uint32{1, 2, 1, 2}, Samples: s}, // duplicate
	}}
	rejected, first, _ := validateRequest(req, validationOpts{})
	require.Equal(t, 3, rejected)
	require.Equal(t, `series {a="b"}: missing __name__ label`, first)
	require.Len(t, req.Timeseries, 2)
	require.Equal(t, "a", MetricName(req, &req.Timeseries[0]))
	require.Equal(t, "c", MetricName(req, &req.Timeseries[1]))
}

func TestValidateV1ThroughConversion(t *testing.T) {
	s := []prompb.Sample{{Value: 1, Timestamp: 1}}
	tests := map[string]struct {
		series     prompb.TimeSeries
		wantMsg    string
		wantLabels string // after validation; "" means as sent
	}{
		"valid":          {series: prompb.TimeSeries{Labels: v1Labels("__name__", "x", "a", "1"), Samples: s}},
		"unsorted":       {series: prompb.TimeSeries{Labels: v1Labels("__name__", "x", "b", "1", "a", "2"), Samples: s}, wantLabels: `{__name__="x", a="2", b="1"}`},
		"duplicate":      {series: prompb.TimeSeries{Labels: v1Labels("__name__", "x", "a", "1", "a", "2"), Samples: s}, wantMsg: `duplicate label name "a"`},
		"empty name":     {series: prompb.TimeSeries{Labels: v1Labels("", "v", "__name__", "x"), Samples: s}, wantMsg: "empty label name"},
		"missing name":   {series: prompb.TimeSeries{Labels: v1Labels("a", "1"), Samples: s}, wantMsg: "missing __name__ label"},
		"empty metric":   {series: prompb.TimeSeries{Labels: v1Labels("__name__", ""), Samples: s}, wantMsg: "empty __name__ label value"},
		"no data":        {series: prompb.TimeSeries{Labels: v1Labels("__name__", "x")}, wantMsg: "no samples or histograms"},
		"exemplars only": {series: prompb.TimeSeries{Labels: v1Labels("__name__", "x"), Exemplars: []prompb.Exemplar{{Value: 1}}}, wantMsg: "1 exemplars but no samples or histograms"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := convertV1(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{tc.series}})
			rejected, first, sorted := validateRequest(&req, validationOpts{})
			if tc.wantMsg == "" {
				require.Zero(t, rejected)
				require.Len(t, req.Timeseries, 1)
				require.Equal(t, tc.wantLabels != "", sorted == 1)
				if tc.wantLabels != "" {
					require.Equal(t, tc.wantLabels, renderLabels(req.Symbols, req.Timeseries[0].LabelsRefs))
				}
				return
			}
			require.Equal(t, 1, rejected)
			require.Contains(t, first, tc.wantMsg)
			require.Empty(t, req.Timeseries)
		})
	}
}

func TestDecodeReportsRejectedAndSorted(t *testing.T) {
	v1 := genV1(5, 3, 2)
	// vmagent's order: the target labels after the scraped ones.
	v1.Timeseries[1].Labels = append(v1.Timeseries[1].Labels, prompb.Label{Name: "instance", Value: "host:9100"}, prompb.Label{Name: "job", Value: "node"})
	v1.Timeseries[2].Labels[1], v1.Timeseries[2].Labels[2] = v1.Timeseries[2].Labels[2], v1.Timeseries[2].Labels[1]
	v1.Timeseries[3].Labels[1].Value = "bad\xff"
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	got, err := d.Decode(newHTTPRequest(ProtocolV1, marshalV1(t, v1)))
	require.NoError(t, err)
	require.Equal(t, 1, got.Rejected)
	require.Equal(t, `series {__name__="metric_1", label_01="bad\xff", label_02="value_2_3"}: value of label "label_01" is not valid UTF-8: "bad\xff"`, got.FirstInvalid)
	require.Equal(t, 2, got.Sorted)
	require.Len(t, got.Request.Timeseries, 4)
	req := &got.Request
	require.Equal(t, `{__name__="metric_1", instance="host:9100", job="node", label_01="value_1_1", label_02="value_2_1"}`,
		renderLabels(req.Symbols, req.Timeseries[1].LabelsRefs))
	require.Equal(t, `{__name__="metric_0", label_01="value_1_2", label_02="value_2_2"}`,
		renderLabels(req.Symbols, req.Timeseries[2].LabelsRefs))
}

func TestDecodeNameValidationScheme(t *testing.T) {
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  v1Labels("__name__", "http.server.requests", "service.name", "api"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}},
	}}}
	for scheme, want := range map[string]string{
		NameSchemeUTF8:   "",
		NameSchemeLegacy: `series {__name__="http.server.requests", "service.name"="api"}: metric name "http.server.requests" is invalid under the legacy name validation scheme`,
		"":               "", // a Config built without defaults validates under UTF-8
	} {
		t.Run(scheme, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NameValidationScheme = scheme
			got, err := NewDecoder(cfg, testFlagPrefix).Decode(newHTTPRequest(ProtocolV1, marshalV1(t, req)))
			require.NoError(t, err)
			if want == "" {
				require.Zero(t, got.Rejected, got.FirstInvalid)
				return
			}
			require.Equal(t, 1, got.Rejected)
			require.Contains(t, got.FirstInvalid, want)
		})
	}
}
