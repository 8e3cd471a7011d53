package ingester

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/record"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestPushCoalescedParts: a push that carries several requests' parts
// (part_ends) is governed part by part and answered part by part, exactly
// as the parts would have been alone, and written as one WAL record.
func TestPushCoalescedParts(t *testing.T) {
	cfg := cardinality.DefaultConfig()
	cfg.Limits.Defaults = cardinality.Limits{MaxSeriesPerMetric: 2, MaxSeriesPerMetricMode: cardinality.ModeEnforce}
	tr, err := cardinality.New(cfg, cardinality.Options{})
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		records [][]string
	)
	svc := NewService(ServiceDeps{Log: appendFunc(func(_ context.Context, b forward.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		records = append(records, names(t, &b.Request))
		return nil
	}), Cardinality: tr, Logger: slog.New(slog.DiscardHandler)})
	svc.Accept(true)

	batchOf := func(series ...[2]string) []byte { return record.FromV2(nil, rwBatch(series...)) }
	parts := [][]byte{
		batchOf([2]string{"m", "1"}, [2]string{"n", "1"}),
		batchOf([2]string{"m", "2"}, [2]string{"m", "3"}), // m/3 is over the limit
		nil, // a part with metadata only
		batchOf([2]string{"m", "1"}),
	}
	var series []byte
	var ends []uint32
	for _, p := range parts {
		series = append(series, p...)
		ends = append(ends, uint32(len(series)))
	}
	resp, err := svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Series: series, PartEnds: ends})
	require.NoError(t, err)

	require.Len(t, resp.GetParts(), 4, "one answer per part")
	want := []struct{ written, refused int64 }{{2, 0}, {1, 1}, {0, 0}, {1, 0}}
	for i, w := range want {
		p := resp.GetParts()[i]
		require.Equal(t, w.written, p.GetSamplesWritten(), "part %d written", i)
		require.Equal(t, w.refused, p.GetRefusedSeries(), "part %d refused", i)
	}
	require.Contains(t, resp.GetParts()[1].GetRefusedMessage(), `max_series_per_metric=2 reached for metric "m"`)
	require.Equal(t, int64(4), resp.GetSamplesWritten(), "the sums")
	require.Equal(t, int64(1), resp.GetRefusedSeries())
	require.Equal(t, resp.GetParts()[1].GetRefusedMessage(), resp.GetRefusedMessage())

	mu.Lock()
	require.Equal(t, [][]string{{"m/1", "n/1", "m/2", "m/1"}}, records, "one WAL record, the kept series of every part in order")
	mu.Unlock()

	// A push without part_ends is answered as before: no parts.
	resp, err = svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Series: parts[0]})
	require.NoError(t, err)
	require.Empty(t, resp.GetParts())
	require.Equal(t, int64(2), resp.GetSamplesWritten())
}

func TestPushPartEndsRefused(t *testing.T) {
	svc := NewService(ServiceDeps{Log: appendFunc(func(context.Context, forward.Batch) error { return nil }), Logger: slog.New(slog.DiscardHandler)})
	svc.Accept(true)
	one := record.FromV2(nil, rwBatch([2]string{"m", "1"}))
	two := append(append([]byte(nil), one...), one...)
	for name, tc := range map[string]struct {
		series []byte
		ends   []uint32
		msg    string
	}{
		"descending":       {two, []uint32{uint32(len(one)) + 1, uint32(len(one)), uint32(len(two))}, "part_ends[1]"},
		"past the batch":   {one, []uint32{uint32(len(one)) + 1}, "part_ends[0]"},
		"short of the end": {two, []uint32{uint32(len(one))}, "not the series batch's length"},
		"inside an entry":  {two, []uint32{3, uint32(len(two))}, "invalid series batch"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := svc.Push(context.Background(), &ingesterv1.PushRequest{Tenant: "t", Series: tc.series, PartEnds: tc.ends})
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}
