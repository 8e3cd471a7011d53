package ingester

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/forward"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// startStopping starts a server over app whose stop the test controls:
// stop cancels its lifecycle, and done reports Run's end.
func startStopping(t *testing.T, app Log) (client ingesterv1.IngesterServiceClient, stop func(), done <-chan error) {
	t.Helper()
	r := launch(t, app, Config{ListenAddress: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20}, nil)
	t.Cleanup(func() { _ = r.conn.Close() })
	return ingesterv1.NewIngesterServiceClient(r.conn), r.stop, r.done
}

// TestPushStreamAnswersInOrder: pushes on one stream are answered in
// order, an error among them with its code, and the stream goes on.
func TestPushStreamAnswersInOrder(t *testing.T) {
	_, client, _, _ := startServer(t, appendFunc(func(context.Context, forward.Batch) error { return nil }))
	s, err := client.PushStream(context.Background())
	require.NoError(t, err)
	for i, body := range [][]byte{payload(t), badRefs(t), payload(t)} {
		require.NoError(t, s.Send(&ingesterv1.PushRequest{Tenant: "t", Request: body}))
		r, err := s.Recv()
		require.NoError(t, err, "push %d", i)
		if i == 1 {
			require.Equal(t, uint32(codes.InvalidArgument), r.GetCode(), "push %d", i)
			require.NotEmpty(t, r.GetMessage())
			require.Nil(t, r.GetResponse())
			continue
		}
		require.Equal(t, uint32(codes.OK), r.GetCode(), "push %d: %s", i, r.GetMessage())
		require.Equal(t, int64(2), r.GetResponse().GetSamplesWritten(), "push %d", i)
	}
	require.NoError(t, s.CloseSend())
	_, err = s.Recv()
	require.ErrorIs(t, err, io.EOF, "the ingester ends the stream the distributor closed")
}

// TestStopAnswersStreamPushInFlight: a push on a stream that is being
// written when the ingester stops is answered before the stop ends, and
// the stop is not held by the stream once it is.
func TestStopAnswersStreamPushInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	client, stop, done := startStopping(t, appendFunc(func(context.Context, forward.Batch) error {
		close(entered)
		<-release
		return nil
	}))
	s, err := client.PushStream(context.Background())
	require.NoError(t, err)
	require.NoError(t, s.Send(&ingesterv1.PushRequest{Tenant: "t", Request: payload(t)}))
	<-entered
	stop()
	close(release)
	r, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, uint32(codes.OK), r.GetCode(), r.GetMessage())
	require.Equal(t, int64(2), r.GetResponse().GetSamplesWritten())
	require.NoError(t, s.CloseSend(), "the distributor closes its idle stream")
	require.NoError(t, <-done)
}

// TestStopForcesIdleStreams: an idle stream does not hold the stop once
// the pushes in flight are answered; it ends, as a call in flight would at
// a forced stop.
func TestStopForcesIdleStreams(t *testing.T) {
	client, stop, done := startStopping(t, appendFunc(func(context.Context, forward.Batch) error { return nil }))
	s, err := client.PushStream(context.Background())
	require.NoError(t, err)
	require.NoError(t, s.Send(&ingesterv1.PushRequest{Tenant: "t", Request: payload(t)}))
	_, err = s.Recv()
	require.NoError(t, err)
	stop()
	require.NoError(t, <-done)
	_, err = s.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}
