package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// BenchmarkClientEncode measures what the Client does to one request of
// 1,000 mixed series (floats with exemplars, native, float and
// custom-bucket histograms, metadata) before it hits the network.
func BenchmarkClientEncode(b *testing.B) {
	batch := genBatch("t", 0, 1000, 1000)
	b.Run("v2", func(b *testing.B) {
		b.ReportAllocs()
		var bufs encodeBuffers
		for b.Loop() {
			req, _, err := attachMetadata(&batch.Request, batch.Metadata)
			if err != nil {
				b.Fatal(err)
			}
			raw, err := bufs.marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			bufs.compress(raw)
		}
	})
	b.Run("v1", func(b *testing.B) {
		b.ReportAllocs()
		var bufs encodeBuffers
		for b.Loop() {
			req, err := ToV1(&batch.Request, batch.Metadata)
			if err != nil {
				b.Fatal(err)
			}
			raw, err := bufs.marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			bufs.compress(raw)
		}
	})
	// The same request held in pkg/record's batch form, as the Forwarder
	// holds it since issue 12.
	rb := batchPayload{batch: record.FromV2(nil, &batch.Request), sent: countsOf(&batch.Request), md: batch.Metadata}
	for _, proto := range []int{ProtocolV2, ProtocolV1} {
		b.Run(fmt.Sprintf("batch-v%d", proto), func(b *testing.B) {
			b.ReportAllocs()
			var bufs encodeBuffers
			for b.Loop() {
				var raw []byte
				var err error
				if proto == ProtocolV2 {
					raw, _, err = rb.v2(&bufs)
				} else {
					raw, _, err = rb.v1(&bufs)
				}
				if err != nil {
					b.Fatal(err)
				}
				bufs.compress(raw)
			}
		})
	}
}

// BenchmarkForwarderThroughput appends 100-sample batches to a Forwarder
// sending (protocol 2) to a no-op receiver and reports samples/s end to end.
func BenchmarkForwarderThroughput(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set(headerSamplesWritten, "0") // present: a 2.0 receiver
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.BatchSendDeadline = 5 * time.Millisecond
	c := newTestClient(b, srv.URL, 2, nil)
	f, err := NewForwarder(cfg, c, nil, nil)
	require.NoError(b, err)
	batches := make([]Batch, 10)
	for i := range batches {
		batches[i] = floatBatch("t", i*100, 100, 1000)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for {
			err := f.Append(ctx, batches[i%len(batches)])
			if err == nil {
				break
			}
			if !errors.Is(err, ErrBackpressure) {
				b.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	for f.pending.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*100)/elapsed.Seconds(), "samples/s")
	cancel()
	require.NoError(b, <-done)
}

// BenchmarkCompress: the snappy block of a forward request (1,000 series
// in RW 1.0), by golang/snappy and by s2's snappy-compatible encoder
// (what encodeBuffers.compress uses).
func BenchmarkCompress(b *testing.B) {
	batch := genBatch("t", 0, 1000, 1000)
	rb := batchPayload{batch: record.FromV2(nil, &batch.Request), sent: countsOf(&batch.Request), md: batch.Metadata}
	var bufs encodeBuffers
	raw, _, err := rb.v1(&bufs)
	if err != nil {
		b.Fatal(err)
	}
	raw = append([]byte(nil), raw...)
	dst := make([]byte, snappy.MaxEncodedLen(len(raw)))
	b.Run("golang-snappy", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			snappy.Encode(dst, raw)
		}
		b.ReportMetric(float64(len(snappy.Encode(dst, raw))), "out-bytes")
	})
	b.Run("s2-snappy", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			bufs.compress(raw)
		}
		b.ReportMetric(float64(len(bufs.compress(raw))), "out-bytes")
	})
}
