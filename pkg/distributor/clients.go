package distributor

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // enables client-side health checking

	"github.com/promgov/promgov/internal/grpcpool"
	"github.com/promgov/promgov/pkg/cluster"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// serviceConfig turns on client-side gRPC health checking: a connection to
// an ingester that reports NOT_SERVING (it is leaving) fails fast instead of
// taking new pushes.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "promgov.ingester.v1.IngesterService"}
}`

// pushWriteBufferSize is the gRPC write buffer of a connection to an
// ingester.
const pushWriteBufferSize = 256 << 10

// pushAnswerWindowSize is the fixed receive window of a stream to an
// ingester: answers are small, and a cluster call's answer (analytics)
// larger than it only waits for a window update.
const pushAnswerWindowSize = 1 << 20

// Clients are a distributor's connections to the ingesters (a
// grpcpool.Pool): one per ingester, with client-side health checking,
// reused for every push (Send, the Distributor's PushSender) and by the
// cluster calls (Client: the analytics fan-out, the query statistics
// shipper). It is safe for concurrent use. Run closes the connections to
// ingesters that left the ring, and all of them when it returns.
type Clients struct {
	pool    *grpcpool.Pool
	streams *pushStreams
}

var _ cluster.Clients = (*Clients)(nil)

// NewClients dials with the defaults (cfg's send size, the Push codec,
// health checking) and then dialOpts, which may replace the (plaintext)
// transport credentials (e.g. clustertls.ClientConfig.DialOption).
func NewClients(cfg Config, dialOpts ...grpc.DialOption) *Clients {
	return &Clients{pool: grpcpool.New(append([]grpc.DialOption{
		grpc.WithDefaultServiceConfig(serviceConfig),
		// The batch of a Push goes to the transport as it is (the codec
		// passes every other message to the default one).
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(cfg.MaxSendMsgSize), grpc.ForceCodecV2(ingesterv1.NewCodec())),
		// A push of a few hundred series (tens of KiB) leaves in one write
		// instead of one per 32 KiB (gRPC's default); the buffer is
		// pooled between writes.
		grpc.WithWriteBufferSize(pushWriteBufferSize),
		// Fixed receive windows turn off gRPC's bandwidth estimation,
		// a PING per burst of answers received (the ingester's side,
		// which matters more, is in ingester.NewServer).
		grpc.WithInitialWindowSize(pushAnswerWindowSize),
		grpc.WithInitialConnWindowSize(4 * pushAnswerWindowSize),
	}, dialOpts...)...), streams: newPushStreams()}
}

// Send sends req to the ingester at addr on one of the PushStreams kept to
// it and returns the push in flight; its Wait reads the answer (for an
// older ingester, Wait makes the Push call).
func (c *Clients) Send(ctx context.Context, addr string, req *ingesterv1.PushRequest) PendingPush {
	conn, err := c.conn(addr)
	if err != nil {
		return failedPush{err}
	}
	return c.streams.send(ctx, conn, addr, req)
}

// failedPush is a push that could not be sent.
type failedPush struct{ err error }

func (f failedPush) Wait(context.Context) (*ingesterv1.PushResponse, error) { return nil, f.err }

// Client returns a cluster-service client of the ingester at addr over the
// connection pushes use.
func (c *Clients) Client(addr string) (ingesterv1.ClusterServiceClient, error) {
	conn, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	return ingesterv1.NewClusterServiceClient(conn), nil
}

func (c *Clients) conn(addr string) (*grpc.ClientConn, error) {
	conn, err := c.pool.Conn(addr)
	if err != nil {
		return nil, fmt.Errorf("ingester: %w", err)
	}
	return conn, nil
}

// Run keeps the connections to the members of m and closes the others
// (grpcpool.Pool.Run), and closes the push streams idle for longer than
// streamIdleTimeout, until ctx ends; then it closes every connection and
// stream.
func (c *Clients) Run(ctx context.Context, m grpcpool.Membership) error {
	defer c.streams.close()
	reaped := make(chan struct{})
	go func() { defer close(reaped); c.streams.run(ctx) }()
	defer func() { <-reaped }()
	return c.pool.Run(ctx, m)
}

// Close closes every connection and push stream; later calls fail. It is
// idempotent.
func (c *Clients) Close() {
	c.streams.close()
	c.pool.Close()
}
