package wal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkAppend measures append throughput per sync policy with many
// concurrent appenders on a real temporary directory. MB/s comes from
// b.SetBytes; records/s is reported as a custom metric.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []string{SyncAlways, SyncGroup, SyncInterval} {
		for _, size := range []int{1 << 10, 32 << 10} {
			b.Run(fmt.Sprintf("policy=%s/size=%dKiB", policy, size>>10), func(b *testing.B) {
				cfg := testConfig(b)
				cfg.SyncPolicy = policy
				cfg.SegmentSize = DefaultSegmentSize
				w, err := Open(cfg, nil, nil, nil)
				require.NoError(b, err)
				defer func() { require.NoError(b, w.Close(context.Background())) }()
				payload := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.SetParallelism(8) // 8 appenders per CPU, like concurrent pushes
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := w.Append(context.Background(), RecordBatch, payload); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkRead measures sequential reading of durable records, with a
// fresh payload per record and with shared payloads (SharePayloads).
func BenchmarkRead(b *testing.B) {
	for _, share := range []bool{false, true} {
		for _, size := range []int{4 << 10, 72 << 10} {
			b.Run(fmt.Sprintf("share=%t/size=%dKiB", share, size>>10), func(b *testing.B) {
				cfg := testConfig(b)
				cfg.SegmentSize = DefaultSegmentSize
				cfg.SyncPolicy = SyncInterval
				w, err := Open(cfg, nil, nil, nil)
				require.NoError(b, err)
				defer func() { require.NoError(b, w.Close(context.Background())) }()
				payload := make([]byte, size)
				for range b.N {
					_, err := w.Append(context.Background(), RecordBatch, payload)
					require.NoError(b, err)
				}
				r := w.NewReader(w.Checkpoint())
				if share {
					r.SharePayloads()
				}
				defer r.Close()
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := r.Next(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
