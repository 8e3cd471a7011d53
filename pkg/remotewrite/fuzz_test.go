package remotewrite

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// fuzzDecode feeds data through Decode. With compress set, data is the
// protobuf payload and gets snappy-encoded so the fuzzer reaches the
// protobuf decoder and the validator; otherwise data is the raw body.
func fuzzDecode(t *testing.T, d *Decoder, p Protocol, data []byte, compress bool) {
	body := data
	if compress {
		body = snappy.Encode(nil, data)
	}
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", p.ContentType())
	r.Header.Set("Content-Encoding", "snappy")
	got, err := d.Decode(r)
	if err != nil {
		require.True(t, errors.Is(err, ErrBadRequest) || errors.Is(err, ErrTooLarge), "unclassified error: %v", err)
		return
	}
	require.Equal(t, p, got.Protocol)
	require.Equal(t, got.Rejected == 0, got.FirstInvalid == "")
	if len(got.Request.Timeseries) > 0 {
		require.Equal(t, "", got.Request.Symbols[0])
	}
	b := NewBuilder()
	for i := range got.Request.Timeseries {
		ts := &got.Request.Timeseries[i]
		require.Equal(t, problemNone, validateSeries(got.Request.Symbols, ts, validationOpts{}).kind)
		// Every series acknowledged is one Prometheus stores whole.
		require.NoError(t, referenceVerdict(got.Request.Symbols, ts, referenceScheme(validationOpts{})))
		require.NotEmpty(t, MetricName(&got.Request, ts))
		b.AddSeries(&got.Request, ts)
	}
	part := b.Request()
	s1, h1, e1 := Counts(&got.Request)
	s2, h2, e2 := Counts(&part)
	require.Equal(t, []int{s1, h1, e1}, []int{s2, h2, e2})
	_, err = part.Marshal()
	require.NoError(t, err)
	got.Release()
}

func fuzzConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxCompressedBytes = 1 << 20
	cfg.MaxDecodedBytes = 4 << 20
	return cfg
}

func FuzzDecodeV1(f *testing.F) {
	fixture, _ := v1Fixture()
	withMeta := genV1(3, 4, 2)
	withMeta.Metadata = []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "metric_0", Help: "h", Unit: "u"}}
	for _, req := range []*prompb.WriteRequest{fixture, withMeta, genV1(5, 3, 2), {}} {
		payload := marshalV1(f, req)
		f.Add(payload, true)
		f.Add(snappy.Encode(nil, payload), false)
	}
	f.Add([]byte{}, false)
	d := NewDecoder(fuzzConfig(), testFlagPrefix)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		fuzzDecode(t, d, ProtocolV1, data, compress)
	})
}

func FuzzDecodeV2(f *testing.F) {
	for _, req := range []*writev2.Request{splitFixture(), genV2(5, 3, 2), {}} {
		payload := marshalV2(f, req)
		f.Add(payload, true)
		f.Add(snappy.Encode(nil, payload), false)
	}
	f.Add([]byte{}, false)
	d := NewDecoder(fuzzConfig(), testFlagPrefix)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		fuzzDecode(t, d, ProtocolV2, data, compress)
	})
}
