package forward

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/wal"
)

// nopBatchSender accepts everything without looking at it.
type nopBatchSender struct{}

func (nopBatchSender) Send(context.Context, string, *writev2.Request, []prompb.MetricMetadata) error {
	return nil
}

func (nopBatchSender) SendBatch(context.Context, string, []byte, Counts, []prompb.MetricMetadata) error {
	return nil
}

// benchWALForward measures the WAL reader to sender path: b.N records of
// 500 one-sample series are read, placed on the shards and handed to a
// sender that does nothing. setup may adjust the WALForwarder.
func benchWALForward(b *testing.B, setup func(*WALForwarder)) {
	wcfg := wal.DefaultConfig()
	wcfg.Dir, wcfg.MaxSizeBytes, wcfg.SyncPolicy = filepath.Join(b.TempDir(), "wal"), 0, wal.SyncInterval
	w, err := wal.Open(wcfg, nil, nil, nil)
	require.NoError(b, err)
	defer func() { _ = w.Close(context.Background()) }()
	batch := floatBatch("team-a", 0, 500, 1_700_000_000_000)
	cfg := DefaultConfig()
	cfg.MinShards, cfg.MaxShards = 1, 1
	cfg.BatchSendDeadline = time.Millisecond
	var end = w.Checkpoint()
	for range b.N {
		end = appendBatch(b, w, batch)
	}
	wf, err := NewWALForwarder(cfg, w, nopBatchSender{}, nil, nil)
	require.NoError(b, err)
	if setup != nil {
		setup(wf)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wf.Run(ctx) }()
	for wf.tr.outstanding() > 0 || wf.fwd.pending.Load() > 0 || func() bool { p, _ := wf.tr.settled(); return p.Before(end) }() {
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(b.N*500)/time.Since(start).Seconds(), "series/s")
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)
}

func BenchmarkWALForwardNoRelabel(b *testing.B) { benchWALForward(b, nil) }
