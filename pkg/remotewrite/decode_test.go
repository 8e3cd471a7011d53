package remotewrite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// failReader fails the test's expectations if the body is ever read.
type failReader struct{ read bool }

func (f *failReader) Read([]byte) (int, error) {
	f.read = true
	return 0, errors.New("body must not be read")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxCompressedBytes = 1 << 10
	cfg.MaxDecodedBytes = 4 << 10
	return cfg
}

func TestDecodeLimits(t *testing.T) {
	d := NewDecoder(smallConfig(), testFlagPrefix)
	valid := marshalV1(t, genV1(1, 3, 1))

	t.Run("declared content length over limit is rejected before reading", func(t *testing.T) {
		body := &failReader{}
		r := httptest.NewRequest(http.MethodPost, "/", body)
		r.ContentLength = 1<<10 + 1
		_, err := d.Decode(r)
		var le *LimitError
		require.ErrorAs(t, err, &le)
		require.ErrorIs(t, err, ErrTooLarge)
		require.Equal(t, "distributor.max-compressed-bytes", le.Flag)
		require.Equal(t, int64(1<<10), le.Limit)
		require.Equal(t, int64(1<<10+1), le.Got)
		require.False(t, body.read)
		require.Equal(t, "request too large: compressed request body of 1025 bytes exceeds the limit of 1024 bytes; raise -distributor.max-compressed-bytes to accept it", err.Error())
	})

	t.Run("streamed body over limit stops at limit+1", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(bytes.NewReader(make([]byte, 5000))))
		r.ContentLength = -1
		_, err := d.Decode(r)
		var le *LimitError
		require.ErrorAs(t, err, &le)
		require.Equal(t, int64(1<<10+1), le.Got)
		require.True(t, le.AtLeast)
		require.ErrorContains(t, err, "compressed request body of at least 1025 bytes")
	})

	t.Run("body exactly at limit passes the compressed check", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, 1<<10)))
		_, err := d.Decode(r)
		require.NotErrorIs(t, err, ErrTooLarge)
		require.ErrorIs(t, err, ErrBadRequest) // zeros are not a valid snappy block
	})

	t.Run("decoded length over limit", func(t *testing.T) {
		payload := make([]byte, 4<<10+1)
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(snappy.Encode(nil, payload)))
		_, err := d.Decode(r)
		var le *LimitError
		require.ErrorAs(t, err, &le)
		require.Equal(t, "distributor.max-decoded-bytes", le.Flag)
		require.Equal(t, int64(4<<10+1), le.Got)
		require.ErrorContains(t, err, "decoded request of 4097 bytes exceeds the limit of 4096 bytes; raise -distributor.max-decoded-bytes")
	})

	t.Run("valid request under limits", func(t *testing.T) {
		got, err := d.Decode(newHTTPRequest(ProtocolV1, valid))
		require.NoError(t, err)
		require.Len(t, got.Request.Timeseries, 1)
	})
}

func TestDecodeHugeDeclaredLengthDoesNotAllocate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxDecodedBytes = 1 << 20
	d := NewDecoder(cfg, testFlagPrefix)
	// A snappy block header declaring 1 GiB followed by a few literal bytes.
	body := binary.AppendUvarint(nil, 1<<30)
	body = append(body, 0x00, 'x')

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := d.Decode(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	runtime.ReadMemStats(&after)

	var le *LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, int64(1<<30), le.Got)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "decoder allocated for a rejected body")
}

func TestDecodeErrors(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	v1 := marshalV1(t, genV1(2, 3, 1))
	tests := map[string]struct {
		req     func() *http.Request
		wantErr error
		wantMsg string
	}{
		"unsupported content type": {
			req: func() *http.Request {
				r := newHTTPRequest(ProtocolV1, v1)
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			wantErr: ErrUnsupportedMediaType, wantMsg: "application/json",
		},
		"unknown proto": {
			req: func() *http.Request {
				r := newHTTPRequest(ProtocolV1, v1)
				r.Header.Set("Content-Type", "application/x-protobuf;proto=foo.Bar")
				return r
			},
			wantErr: ErrUnsupportedMediaType, wantMsg: "foo.Bar",
		},
		"gzip encoding": {
			req: func() *http.Request {
				r := newHTTPRequest(ProtocolV1, v1)
				r.Header.Set("Content-Encoding", "gzip")
				return r
			},
			wantErr: ErrUnsupportedMediaType, wantMsg: "gzip",
		},
		"empty body": {
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/", http.NoBody)
			},
			wantErr: ErrBadRequest, wantMsg: "invalid snappy",
		},
		"not snappy": {
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/", strings.NewReader("this is not snappy at all"))
			},
			wantErr: ErrBadRequest, wantMsg: "invalid snappy",
		},
		"truncated snappy": {
			req: func() *http.Request {
				enc := snappy.Encode(nil, v1)
				return httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(enc[:len(enc)-3]))
			},
			wantErr: ErrBadRequest, wantMsg: "invalid snappy",
		},
		"bad v1 protobuf": {
			req: func() *http.Request {
				return newHTTPRequest(ProtocolV1, []byte{0x0a, 0xff, 0xff, 0x01})
			},
			wantErr: ErrBadRequest, wantMsg: "decode prometheus.WriteRequest protobuf",
		},
		"bad v2 protobuf": {
			req: func() *http.Request {
				return newHTTPRequest(ProtocolV2, []byte{0x22, 0x05, 'a'})
			},
			wantErr: ErrBadRequest, wantMsg: "decode io.prometheus.write.v2.Request protobuf",
		},
		"v2 symbols[0] not empty": {
			req: func() *http.Request {
				req := &writev2.Request{Symbols: []string{"x", "__name__", "up"},
					Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1}}}}}
				return newHTTPRequest(ProtocolV2, marshalV2(t, req))
			},
			wantErr: ErrBadRequest, wantMsg: `symbols[0] must be the empty string`,
		},
		"body read error": {
			req: func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/", errReader{})
			},
			wantErr: ErrBadRequest, wantMsg: "connection reset",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := d.Decode(tc.req())
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.wantMsg)
			require.Nil(t, got)
		})
	}
}

func TestDecodeProtocols(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	v1 := genV1(10, 4, 3)
	v1.Metadata = []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "metric_0", Help: "help", Unit: "seconds"}}
	v2 := genV2(10, 4, 3)

	tests := map[string]struct {
		req          *http.Request
		wantProtocol Protocol
		wantMetadata int
	}{
		"v1 canonical": {req: newHTTPRequest(ProtocolV1, marshalV1(t, v1)), wantProtocol: ProtocolV1, wantMetadata: 1},
		"v1 no headers": {req: func() *http.Request {
			r := newHTTPRequest(ProtocolV1, marshalV1(t, v1))
			r.Header.Del("Content-Type")
			r.Header.Del("Content-Encoding")
			return r
		}(), wantProtocol: ProtocolV1, wantMetadata: 1},
		"v2 canonical": {req: newHTTPRequest(ProtocolV2, marshalV2(t, v2)), wantProtocol: ProtocolV2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := d.Decode(tc.req)
			require.NoError(t, err)
			require.Equal(t, tc.wantProtocol, got.Protocol)
			require.Len(t, got.Request.Timeseries, 10)
			require.Len(t, got.Metadata, tc.wantMetadata)
			require.Zero(t, got.Rejected)
			require.Empty(t, got.FirstInvalid)
			require.Equal(t, viewRequest(v2), viewRequest(&got.Request))
			samples, hists, exemplars := Counts(&got.Request)
			require.Equal(t, []int{10, 0, 0}, []int{samples, hists, exemplars})
			got.Release()
			got.Release()
			require.Empty(t, got.Request.Timeseries)
		})
	}
}

func TestDecodeSpecialValuesAccepted(t *testing.T) {
	stale := math.Float64frombits(0x7ff0000000000002)
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), stale, 0, -0.5}
	samples := make([]prompb.Sample, len(values))
	for i, v := range values {
		samples[i] = prompb.Sample{Value: v, Timestamp: int64(i)}
	}
	v1 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: v1Labels("__name__", "x"), Samples: samples}}}
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	for name, p := range map[string]Protocol{"v1": ProtocolV1, "v2": ProtocolV2} {
		t.Run(name, func(t *testing.T) {
			payload := marshalV1(t, v1)
			if p == ProtocolV2 {
				conv := convertV1(v1)
				payload = marshalV2(t, &conv)
			}
			got, err := d.Decode(newHTTPRequest(p, payload))
			require.NoError(t, err)
			require.Zero(t, got.Rejected)
			require.Len(t, got.Request.Timeseries, 1)
			gotSamples := got.Request.Timeseries[0].Samples
			require.Len(t, gotSamples, len(values))
			for i, v := range values {
				require.Equal(t, math.Float64bits(v), math.Float64bits(gotSamples[i].Value), "value %d", i)
			}
		})
	}
}

func TestDecoderTenant(t *testing.T) {
	cfg := DefaultConfig()
	d := NewDecoder(cfg, testFlagPrefix)
	tests := map[string]struct {
		header string
		want   string
		err    string
	}{
		"absent":        {header: "", want: "anonymous"},
		"blank":         {header: "   ", want: "anonymous"},
		"present":       {header: "team-a", want: "team-a"},
		"trimmed":       {header: " team-b ", want: "team-b"},
		"every allowed": {header: "aZ09!-_.*'()", want: "aZ09!-_.*'()"},
		"150 bytes":     {header: strings.Repeat("t", 150), want: strings.Repeat("t", 150)},
		"151 bytes":     {header: strings.Repeat("t", 151), err: "longer than 150 bytes (151)"},
		"invalid UTF-8": {header: "bad\xff", err: `byte 3 (0xff) is not allowed`},
		"slash":         {header: "a/b", err: `byte 1 (0x2f) is not allowed`},
		"pipe":          {header: "a|b", err: `byte 1 (0x7c) is not allowed`},
		"dot":           {header: ".", err: `"." and ".." are not allowed`},
		"dot dot":       {header: "..", err: `"." and ".." are not allowed`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", http.NoBody)
			if tc.header != "" {
				r.Header.Set("X-Scope-OrgID", tc.header)
			}
			got, err := d.Tenant(r)
			if tc.err == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			require.ErrorIs(t, err, ErrBadRequest)
			require.ErrorContains(t, err, "invalid tenant ID")
			require.ErrorContains(t, err, "in header X-Scope-OrgID")
			require.ErrorContains(t, err, tc.err)
		})
	}
	zero := NewDecoder(Config{}, testFlagPrefix)
	got, err := zero.Tenant(httptest.NewRequest(http.MethodPost, "/", http.NoBody))
	require.NoError(t, err)
	require.Equal(t, "anonymous", got)
}

func TestDecodeConcurrent(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	v1 := marshalV1(t, genV1(50, 5, 5))
	v2 := marshalV2(t, genV2(50, 5, 5))
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for range 20 {
				p, payload := ProtocolV1, v1
				if i%2 == 1 {
					p, payload = ProtocolV2, v2
				}
				var got *Decoded
				got, err = d.Decode(newHTTPRequest(p, payload))
				if err == nil && len(got.Request.Timeseries) != 50 {
					err = errors.New("wrong series count")
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-done)
	}
}
