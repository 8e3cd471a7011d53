package integration

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMalformedRequests sends bad input of every kind and expects a 4xx that
// names the problem, valid series of a partly invalid request written, and
// a cluster that is still serving afterwards.
func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 2)
	now := time.Now().UnixMilli()

	v1 := func(series ...prompb.TimeSeries) []byte {
		b, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
		require.NoError(t, err)
		return snappy.Encode(nil, b)
	}
	series := func(lbls ...string) prompb.TimeSeries {
		ts := prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}
		for i := 0; i < len(lbls); i += 2 {
			ts.Labels = append(ts.Labels, prompb.Label{Name: lbls[i], Value: lbls[i+1]})
		}
		return ts
	}
	// A snappy block whose header claims 1 GiB decoded.
	hugeHeader := binary.AppendUvarint(nil, 1<<30)
	hugeHeader = append(hugeHeader, bytes.Repeat([]byte{0}, 16)...)

	for _, tc := range []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		wantCode    int
		wantMsg     string
	}{
		{"unsupported media type", "text/plain", "snappy", v1(series("__name__", "x")), 415, ""},
		{"unknown proto parameter", "application/x-protobuf;proto=io.prometheus.write.v3.Request", "snappy", v1(series("__name__", "x")), 415, ""},
		{"unsupported content encoding", contentTypeV1, "gzip", v1(series("__name__", "x")), 415, ""},
		{"not snappy", contentTypeV1, "snappy", []byte("definitely not snappy"), 400, "snappy"},
		{"not protobuf", contentTypeV2, "snappy", snappy.Encode(nil, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}), 400, ""},
		{"compressed body over the limit", contentTypeV1, "snappy", bytes.Repeat([]byte{'a'}, 11<<20), 413, "distributor.max-compressed-bytes"},
		{"decoded size over the limit", contentTypeV1, "snappy", hugeHeader, 413, "distributor.max-decoded-bytes"},
		{"missing metric name", contentTypeV1, "snappy", v1(series("job", "a")), 400, "__name__"},
		{"label value not UTF-8", contentTypeV1, "snappy", v1(series("__name__", "bad_utf8", "a", "\xff")), 400, `bad_utf8", a="\xff"}: value of label "a" is not valid UTF-8`},
		{"duplicate label once sorted", contentTypeV1, "snappy", v1(series("__name__", "bad_dup", "z", "1", "a", "2", "z", "3")), 400, `duplicate label name "z"`},
		{"empty label name", contentTypeV1, "snappy", v1(series("__name__", "bad_empty", "", "v")), 400, "bad_empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := postRWEncoding(t, c.writeURL(), tc.contentType, tc.encoding, tc.body)
			require.Equal(t, tc.wantCode, code, body)
			require.Contains(t, body, tc.wantMsg)
		})
	}

	t.Run("valid series of a partly invalid request are written", func(t *testing.T) {
		code, _, body := postRW(t, c.writeURL(), contentTypeV1,
			v1(series("__name__", "mixed_valid", "job", "a"), series("__name__", "mixed_invalid", "bad-name\xff", "1")), nil)
		require.Equal(t, 400, code)
		require.Contains(t, body, "mixed_invalid")
		require.Contains(t, body, "1 series in the request were written")
		eventually(t, func(ct *assert.CollectT) bool { return c.backend.count(ct, "count(mixed_valid)") == 1 },
			20*time.Second, 200*time.Millisecond)
	})

	t.Run("unsorted labels are sorted and written", func(t *testing.T) {
		code, _, body := postRW(t, c.writeURL(), contentTypeV1,
			v1(series("__name__", "unsorted_ok", "z", "1", "a", "2", "instance", "h:9100", "job", "node")), nil)
		require.Equal(t, 204, code, body)
		eventually(t, func(ct *assert.CollectT) bool {
			return c.backend.count(ct, `count(unsorted_ok{a="2", instance="h:9100", job="node", z="1"})`) == 1
		}, 20*time.Second, 200*time.Millisecond)
	})

	t.Run("a wrong write path names the right one", func(t *testing.T) {
		for _, path := range []string{"/api/v1/push", "/otlp/v1/metrics", "/write", "/api/v1/receive"} {
			code, _, body := postRW(t, c.distributor.url(path), contentTypeV1, v1(series("__name__", "x")), nil)
			require.Equal(t, http.StatusNotFound, code, "%s: %s", path, body)
			require.Contains(t, body, "promgov receives Prometheus Remote Write 1.0 and 2.0 at POST /api/v1/write", path)
		}
	})

	t.Run("cluster still serves", func(t *testing.T) {
		code, _, body := postRW(t, c.writeURL(), contentTypeV1, v1(series("__name__", "after_malformed", "job", "a")), nil)
		require.Equal(t, 204, code, body)
		resp, err := http.Get(c.distributor.url("/-/ready"))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		for _, n := range c.ingesters {
			require.True(t, n.proc.Running(), "%s died", n.name)
		}
		eventually(t, func(ct *assert.CollectT) bool { return c.backend.count(ct, "count(after_malformed)") == 1 },
			20*time.Second, 200*time.Millisecond)
	})
}

func postRWEncoding(t *testing.T, url, contentType, encoding string, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Content-Encoding", encoding)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, buf.String()
}
