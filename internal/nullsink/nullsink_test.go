package nullsink

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/remotewrite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSinkCounts(t *testing.T) {
	s := New()
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(ct string, raw []byte) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp
	}
	v1 := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "a"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
	}}, Metadata: []prompb.MetricMetadata{{MetricFamilyName: "a"}}}
	raw1, err := v1.Marshal()
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, post(remotewrite.ProtocolV1.ContentType(), raw1).StatusCode)

	v2 := writev2.Request{Symbols: []string{"", "__name__", "b"}, Timeseries: []writev2.TimeSeries{{
		LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}},
	}}}
	raw2, err := v2.Marshal()
	require.NoError(t, err)
	resp := post(remotewrite.ProtocolV2.ContentType(), raw2)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"))

	require.Equal(t, http.StatusBadRequest, post(remotewrite.ProtocolV1.ContentType(), []byte{0xff}).StatusCode)
	require.Equal(t, Counts{Requests: 3, Rejected: 1, Series: 2, Samples: 3, Metadata: 1}, s.Counts())
}
