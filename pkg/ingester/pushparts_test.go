package ingester

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// TestPushPartsAnswersEachPart: over real gRPC into a real WAL, every part
// of a PushParts call is answered as its own Push would be (written,
// refused by a limit, invalid), one part's failure costs no other, and the
// parts written land in the WAL in order as one record each.
func TestPushPartsAnswersEachPart(t *testing.T) {
	cfg := wal.DefaultConfig()
	cfg.Dir = t.TempDir()
	w, err := wal.Open(cfg, nil, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close(context.Background())) }()

	ccfg := cardinality.DefaultConfig()
	ccfg.Limits.Defaults = cardinality.Limits{MaxSeriesPerMetric: 1, MaxSeriesPerMetricMode: cardinality.ModeEnforce}
	tr, err := cardinality.New(ccfg, cardinality.Options{})
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	svc := NewService(ServiceDeps{Log: w, Cardinality: tr, Logger: logger, Registerer: prometheus.NewRegistry()})
	_, client, _, _ := startServerWithService(t, svc)

	series := func(s ...[2]string) []byte { return record.FromV2(nil, rwBatch(s...)) }
	resp, err := client.PushParts(context.Background(), &ingesterv1.PushPartsRequest{Parts: []*ingesterv1.PushRequest{
		{Tenant: "a", Series: series([2]string{"m", "1"})},
		{Tenant: "b", Series: []byte{0xff, 0x01}}, // not a series batch
		{Tenant: "a", Series: series([2]string{"m", "2"}, [2]string{"n", "1"})},
		{Tenant: "b", Metadata: []*ingesterv1.MetricMetadata{{MetricFamilyName: "m", Help: "h"}}},
	}})
	require.NoError(t, err)
	res := resp.GetResults()
	require.Len(t, res, 4)

	require.Equal(t, uint32(codes.OK), res[0].GetCode())
	require.Equal(t, int64(1), res[0].GetResponse().GetSamplesWritten())

	require.Equal(t, uint32(codes.InvalidArgument), res[1].GetCode())
	require.Contains(t, res[1].GetMessage(), "invalid series batch")

	require.Equal(t, uint32(codes.OK), res[2].GetCode())
	require.Equal(t, int64(1), res[2].GetResponse().GetSamplesWritten(), "n/1 written")
	require.Equal(t, int64(1), res[2].GetResponse().GetRefusedSeries(), "m/2 over the limit of 1")
	require.Contains(t, res[2].GetResponse().GetRefusedMessage(), `metric "m" of tenant "a"`)

	require.Equal(t, uint32(codes.OK), res[3].GetCode())

	r := w.NewReader(w.Checkpoint())
	defer r.Close()
	var got []string
	for range 3 {
		rec, err := r.Next(context.Background())
		require.NoError(t, err)
		b, err := forward.DecodeRecord(rec.Payload)
		require.NoError(t, err)
		got = append(got, b.Tenant)
		got = append(got, names(t, &b.Request)...)
		for _, md := range b.Metadata {
			got = append(got, "metadata "+md.MetricFamilyName)
		}
	}
	require.Equal(t, []string{"a", "m/1", "a", "n/1", "b", "metadata m"}, got, "the parts written, in order, one record each")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, context.Canceled, "nothing more was written")

	// A leaving ingester refuses the call as a whole.
	svc.Accept(false)
	_, err = client.PushParts(context.Background(), &ingesterv1.PushPartsRequest{Parts: []*ingesterv1.PushRequest{{Tenant: "a", Series: series([2]string{"m", "1"})}}})
	require.Equal(t, codes.Unavailable, status.Code(err))
}
