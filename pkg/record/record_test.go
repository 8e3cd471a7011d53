package record_test

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

func sampleRequest() *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "a"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 10}, {Value: -0.5, Timestamp: 20}},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "req_total", "job", "b"), nil),
			Samples:    []writev2.Sample{{Value: 3, Timestamp: 10, StartTimestamp: 5}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "x"), nil), Value: 2, Timestamp: 9}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests.")},
		},
	}}
	req.Symbols = st.Symbols()
	return req
}

func TestIterAndValidate(t *testing.T) {
	req := sampleRequest()
	batch := record.FromV2(nil, req)
	var sb labels.ScratchBuilder
	it := record.NewIter(batch)
	var names []string
	for i := 0; it.Next(); i++ {
		e := it.Entry()
		name, err := e.Validate()
		require.NoError(t, err)
		names = append(names, string(name))
		ls := record.Labels(e.Series, &sb)
		require.Equal(t, ls.Hash(), e.Hash)
		require.Equal(t, len(req.Timeseries[i].Samples), e.Samples)
		require.Equal(t, len(req.Timeseries[i].Exemplars), e.Exemplars)
		require.Equal(t, i == 1, e.Flags&record.FlagExtras != 0, "only the second series has 2.0-only data")
		require.Equal(t, name, record.MetricName(e.Series))
	}
	require.NoError(t, it.Err())
	require.Equal(t, []string{"up", "req_total"}, names)
}

func TestMalformedBatches(t *testing.T) {
	good := record.FromV2(nil, sampleRequest())
	for name, tc := range map[string]struct {
		batch    []byte
		framing  bool // the iterator refuses it, not Validate
		mutation func(e *record.Entry)
		msg      string // in Validate's error
	}{
		"truncated header":    {batch: good[:5], framing: true},
		"series past the end": {batch: good[:20], framing: true},
		"wrong sample count":  {batch: good, mutation: func(e *record.Entry) { e.Samples++ }},
		"extras without flag": {batch: good, mutation: func(e *record.Entry) { e.Flags = 0 }},
		"not a series":        {batch: record.AppendEntry(nil, &record.Entry{Series: []byte{0xff, 0x01}})},
		"varint field":        {batch: record.AppendEntry(nil, &record.Entry{Series: []byte{0x08, 0x01}}), msg: "wire type 0"},
		"field past the end":  {batch: record.AppendEntry(nil, &record.Entry{Series: []byte{0x0a, 0x05, 'a'}}), msg: "field 1"},
		"field number 0":      {batch: record.AppendEntry(nil, &record.Entry{Series: []byte{0x02, 0x00}}), msg: "invalid field number"},
		"two-byte tag":        {batch: record.AppendEntry(nil, &record.Entry{Series: []byte{0x82, 0x01, 0x00}}), msg: "unknown series field 16"},
		"no name":             {batch: record.AppendEntry(nil, &record.Entry{Series: record.AppendLabel(nil, "a", "b")})},
	} {
		t.Run(name, func(t *testing.T) {
			it := record.NewIter(tc.batch)
			var verr error
			for it.Next() {
				e := *it.Entry()
				if tc.mutation != nil && e.Flags != 0 {
					tc.mutation(&e)
				}
				if _, err := e.Validate(); err != nil && verr == nil {
					verr = err
				}
			}
			if tc.framing {
				require.ErrorIs(t, it.Err(), record.ErrMalformed)
				return
			}
			require.NoError(t, it.Err())
			require.ErrorIs(t, verr, record.ErrMalformed)
			require.ErrorContains(t, verr, tc.msg)
		})
	}
}

// FuzzBatch: whatever the bytes, iterating, validating and encoding the
// valid entries as 1.0 and 2.0 never panics, and encodes what parses.
func FuzzBatch(f *testing.F) {
	f.Add(record.FromV2(nil, sampleRequest()))
	f.Add([]byte{})
	f.Add(record.AppendEntry(nil, &record.Entry{Series: record.AppendLabel(nil, "__name__", "x")}))
	meta := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "req", Help: "h"}}
	f.Fuzz(func(t *testing.T, batch []byte) {
		var v1 record.V1Encoder
		var v2 record.V2Encoder
		v1.Reset(meta)
		v2.Reset(meta)
		var want []labels.Labels // each 2.0 series' labels
		var sb labels.ScratchBuilder
		it := record.NewIter(batch)
		for it.Next() {
			e := it.Entry()
			if _, err := e.Validate(); err != nil {
				continue
			}
			v1.Add(e)
			v2.Add(e)
			ls := record.Labels(e.Series, &sb)
			want = append(want, ls)
			if e.Samples > 0 && e.Histograms > 0 {
				want = append(want, ls) // split in two
			}
		}
		var w1 prompb.WriteRequest
		if err := w1.Unmarshal(v1.Bytes()); err == nil {
			require.GreaterOrEqual(t, len(w1.Timeseries), 0)
		}
		var w2 writev2.Request
		if err := w2.Unmarshal(v2.Bytes()); err == nil {
			// Every series' references name its labels.
			require.Len(t, w2.Timeseries, len(want))
			for i, ts := range w2.Timeseries {
				sb.Reset()
				for j := 0; j+1 < len(ts.LabelsRefs); j += 2 {
					sb.Add(w2.Symbols[ts.LabelsRefs[j]], w2.Symbols[ts.LabelsRefs[j+1]])
				}
				require.Equal(t, want[i].String(), sb.Labels().String(), "series %d", i)
			}
		}
		_ = v2.Left()
	})
}
