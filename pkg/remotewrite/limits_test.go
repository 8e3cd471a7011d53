package remotewrite

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// limitCase is one series that breaks (or sits at) a bound, sent next to a
// valid series that must be kept.
type limitCase struct {
	labels  []string // name/value pairs, __name__ first
	buckets int      // native histogram buckets; 0: a float sample
	// want is "" when the series is within the bounds, else a fragment of
	// the rejection message; every message also names the flag.
	want, flag string
}

func limitCases() map[string]limitCase {
	many := func(n int) []string {
		kv := []string{"__name__", "wide"}
		for i := 1; i < n; i++ {
			kv = append(kv, fmt.Sprintf("l%07d", i), "v")
		}
		return kv
	}
	return map[string]limitCase{
		"name at the limit":    {labels: []string{"__name__", "ok", strings.Repeat("n", DefaultMaxLabelNameLength), "v"}},
		"name over the limit":  {labels: []string{"__name__", "bad", strings.Repeat("n", DefaultMaxLabelNameLength+1), "v"}, want: "is 1025 bytes long, over the limit of 1024", flag: "distributor.max-label-name-length"},
		"value at the limit":   {labels: []string{"__name__", "ok", "a", strings.Repeat("v", DefaultMaxLabelValueLength)}},
		"value over the limit": {labels: []string{"__name__", "bad", "a", strings.Repeat("v", DefaultMaxLabelValueLength+1)}, want: `the value of label "a" is 4097 bytes long`, flag: "distributor.max-label-value-length"},
		// The crash: one value of 16 MiB + 1 byte, past what a
		// Prometheus label set can encode at all.
		"value of 16 MiB + 1": {labels: []string{"__name__", "bad", "a", strings.Repeat("v", 16<<20+1)}, want: "is 16777217 bytes long", flag: "distributor.max-label-value-length"},
		"labels at the limit": {labels: many(DefaultMaxLabelNamesPerSeries)},
		"labels over":         {labels: many(DefaultMaxLabelNamesPerSeries + 1), want: "series has 65 labels, over the limit of 64", flag: "distributor.max-label-names-per-series"},
		"1,000,000 labels":    {labels: many(1_000_000), want: "series has 1000000 labels", flag: "distributor.max-label-names-per-series"},
		"buckets at limit":    {labels: []string{"__name__", "ok"}, buckets: DefaultMaxBucketsPerHistogram},
		"buckets over":        {labels: []string{"__name__", "bad"}, buckets: DefaultMaxBucketsPerHistogram + 1, want: "has 4097 buckets, over the limit of 4096", flag: "distributor.max-buckets-per-histogram"},
	}
}

func nativeHistogram(buckets int) writev2.Histogram {
	return writev2.Histogram{
		Count: &writev2.Histogram_CountInt{CountInt: uint64(buckets)}, Schema: 0, Timestamp: 1,
		PositiveSpans:  []writev2.BucketSpan{{Offset: 0, Length: uint32(buckets)}},
		PositiveDeltas: append([]int64{1}, make([]int64, buckets-1)...),
	}
}

func TestDecodeEnforcesSeriesLimits(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	for name, tc := range limitCases() {
		for _, proto := range []Protocol{ProtocolV1, ProtocolV2} {
			t.Run(name+"/"+proto.String(), func(t *testing.T) {
				var payload []byte
				switch proto {
				case ProtocolV1:
					ts := prompb.TimeSeries{Labels: v1Labels(tc.labels...), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
					if tc.buckets > 0 {
						h := nativeHistogram(tc.buckets)
						ts.Samples = nil
						ts.Histograms = []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: h.GetCountInt()},
							Timestamp: 1, PositiveSpans: []prompb.BucketSpan{{Length: uint32(tc.buckets)}}, PositiveDeltas: h.PositiveDeltas}}
					}
					payload = marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
						{Labels: v1Labels("__name__", "good"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}, ts}})
				case ProtocolV2:
					st := writev2.NewSymbolTable()
					good := writev2.TimeSeries{LabelsRefs: v2Refs(&st, "__name__", "good"), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}
					ts := writev2.TimeSeries{LabelsRefs: v2Refs(&st, tc.labels...), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}}
					if tc.buckets > 0 {
						ts.Samples, ts.Histograms = nil, []writev2.Histogram{nativeHistogram(tc.buckets)}
					}
					payload = marshalV2(t, &writev2.Request{Symbols: st.Symbols(), Timeseries: []writev2.TimeSeries{good, ts}})
				}
				got, err := d.Decode(newHTTPRequest(proto, payload))
				require.NoError(t, err)
				if tc.want == "" {
					require.Zero(t, got.Rejected, got.FirstInvalid)
					require.Len(t, got.Request.Timeseries, 2)
					return
				}
				require.Equal(t, 1, got.Rejected)
				require.Len(t, got.Request.Timeseries, 1, "the valid series is kept")
				require.Contains(t, got.FirstInvalid, tc.want)
				require.Contains(t, got.FirstInvalid, "raise -"+tc.flag)
				require.Contains(t, got.FirstInvalid, `__name__="`+tc.labels[1]+`"`, "the message names the series")
				require.Less(t, len(got.FirstInvalid), 2*maxRenderedLabels, "the message stays short")
			})
		}
	}
}

// TestDecodeV1DoesNotBuildOversizedSeries: the RW 1.0 decoder keeps neither
// an over-long string nor labels past the bound, so what it allocates for
// such a series is a small part of the payload.
func TestDecodeV1DoesNotBuildOversizedSeries(t *testing.T) {
	for name, labels := range map[string][]string{
		"16 MiB value": limitCases()["value of 16 MiB + 1"].labels,
		"1M labels":    limitCases()["1,000,000 labels"].labels,
	} {
		t.Run(name, func(t *testing.T) {
			payload := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				{Labels: v1Labels(labels...), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}}})
			lim := newLimits(&Config{MaxLabelNameLength: DefaultMaxLabelNameLength, MaxLabelValueLength: DefaultMaxLabelValueLength,
				MaxLabelNamesPerSeries: DefaultMaxLabelNamesPerSeries, MaxSeriesPerRequest: DefaultMaxSeriesPerRequest,
				MaxBucketsPerHistogram: DefaultMaxBucketsPerHistogram}, testFlagPrefix)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			req, _, pre, err := decodeV1(payload, lim)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			require.Len(t, pre, 1)
			require.LessOrEqual(t, len(req.Timeseries[0].LabelsRefs), 2*DefaultMaxLabelNamesPerSeries)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(len(payload)/4),
				"decoding a refused series allocated a large part of its %d-byte payload", len(payload))
		})
	}
}

func TestDecodeSeriesPerRequestLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSeriesPerRequest = 10
	d := NewDecoder(cfg, testFlagPrefix)
	for _, proto := range []Protocol{ProtocolV1, ProtocolV2} {
		t.Run(proto.String(), func(t *testing.T) {
			for _, n := range []int{10, 11} {
				var payload []byte
				if proto == ProtocolV1 {
					payload = marshalV1(t, genV1(n, 2, 3))
				} else {
					payload = marshalV2(t, genV2(n, 2, 3))
				}
				got, err := d.Decode(newHTTPRequest(proto, payload))
				if n <= 10 {
					require.NoError(t, err)
					require.Len(t, got.Request.Timeseries, n)
					continue
				}
				var le *LimitError
				require.ErrorAs(t, err, &le)
				require.ErrorIs(t, err, ErrTooLarge)
				require.EqualError(t, err, "request too large: series in the request of at least 11 series exceeds the limit of 10 series; raise -distributor.max-series-per-request to accept it")
			}
		})
	}
}

// slowBody sends its first byte and then blocks until the test ends, like a
// client that declared a large Content-Length and trickles.
type slowBody struct{ done chan struct{} }

func (b *slowBody) Read(p []byte) (int, error) {
	select {
	case <-b.done:
		return 0, io.ErrUnexpectedEOF
	default:
	}
	if len(p) > 0 {
		p[0] = 0xff
		<-b.done
		return 1, nil
	}
	return 0, nil
}

// TestDecodeDoesNotAllocateTheClaimedLength: a client that claims 10 MiB
// and sends one byte costs what arrived, not what it claimed.
func TestDecodeDoesNotAllocateTheClaimedLength(t *testing.T) {
	d := NewDecoder(DefaultConfig(), testFlagPrefix)
	const clients = 50
	bodies := make([]*slowBody, clients)
	errs := make(chan error, clients)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range bodies {
		bodies[i] = &slowBody{done: make(chan struct{})}
		r := httptest.NewRequest(http.MethodPost, "/api/v1/write", bodies[i])
		r.ContentLength = 10 << 20
		r.Header.Set("Content-Type", ProtocolV1.ContentType())
		r.Header.Set("Content-Encoding", "snappy")
		go func() { _, err := d.Decode(r); errs <- err }()
	}
	// Let every decoder start reading, then measure what they hold.
	require.Eventually(t, func() bool {
		runtime.ReadMemStats(&after)
		return after.Mallocs-before.Mallocs > clients
	}, 5*time.Second, time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, b := range bodies {
		close(b.done)
	}
	for range bodies {
		require.Error(t, <-errs)
	}
	require.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(clients)<<20,
		"%d clients that each sent one byte of a claimed 10 MiB hold %d bytes", clients, after.HeapAlloc-before.HeapAlloc)
}

var _ = bytes.NewReader
