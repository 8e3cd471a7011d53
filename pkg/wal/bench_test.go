package wal

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkAppend measures append throughput per sync policy, with and
// without preallocation, with many concurrent appenders on a real temporary
// directory. MB/s comes from b.SetBytes; records/s and the process's CPU
// per record (cpu-ns/op: user and system time, fsync included) are custom
// metrics.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []string{SyncAlways, SyncGroup, SyncInterval} {
		for _, size := range []int{1 << 10, 32 << 10} {
			for _, prealloc := range []bool{true, false} {
				b.Run(fmt.Sprintf("policy=%s/size=%dKiB/prealloc=%t", policy, size>>10, prealloc), func(b *testing.B) {
					cfg := testConfig(b)
					cfg.SyncPolicy = policy
					cfg.SegmentSize = DefaultSegmentSize
					cfg.Preallocate = prealloc
					w, err := Open(cfg, nil, nil, nil)
					require.NoError(b, err)
					defer func() { require.NoError(b, w.Close(context.Background())) }()
					payload := make([]byte, size)
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.SetParallelism(8) // 8 appenders per CPU, like concurrent pushes
					start, cpu := time.Now(), processCPU(b)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := w.Append(context.Background(), RecordBatch, payload); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
					b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
