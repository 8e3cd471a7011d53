package remotewrite

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

// BenchmarkDecodeValidateSplit measures the distributor's per-request edge
// work: decode + convert + validate 1,000 series of 10 labels, then split
// them between 3 owners with one Builder each.
func BenchmarkDecodeValidateSplit(b *testing.B) {
	const series, labels, metrics, owners = 1000, 10, 50, 3
	payloads := map[string]struct {
		protocol Protocol
		body     []byte
	}{
		"v1": {ProtocolV1, snappy.Encode(nil, marshalV1(b, genV1(series, labels, metrics)))},
		"v2": {ProtocolV2, snappy.Encode(nil, marshalV2(b, genV2(series, labels, metrics)))},
	}
	for _, name := range []string{"v1", "v2"} {
		p := payloads[name]
		b.Run(name, func(b *testing.B) {
			d := NewDecoder(DefaultConfig())
			builders := make([]*Builder, owners)
			for i := range builders {
				builders[i] = NewBuilder()
			}
			body := bytes.NewReader(p.body)
			r := httptest.NewRequest(http.MethodPost, "/api/v1/push", body)
			r.Header.Set("Content-Type", p.protocol.ContentType())
			r.Header.Set("Content-Encoding", "snappy")
			b.ReportAllocs()
			b.SetBytes(int64(len(p.body)))
			b.ResetTimer()
			for b.Loop() {
				body.Reset(p.body)
				got, err := d.Decode(r)
				if err != nil {
					b.Fatal(err)
				}
				req := &got.Request
				for i := range req.Timeseries {
					ts := &req.Timeseries[i]
					builders[xxhash.Sum64String(MetricName(req, ts))%owners].AddSeries(req, ts)
				}
				for _, bl := range builders {
					_ = bl.Request()
					bl.Reset()
				}
				got.Release()
			}
			b.ReportMetric(float64(series)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

func TestBenchmarkFixtureValid(t *testing.T) {
	d := NewDecoder(DefaultConfig())
	got, err := d.Decode(newHTTPRequest(ProtocolV2, marshalV2(t, genV2(1000, 10, 50))))
	require.NoError(t, err)
	require.Zero(t, got.Rejected)
	require.Len(t, got.Request.Timeseries, 1000)
}
