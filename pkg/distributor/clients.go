package distributor

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // enables client-side health checking

	"github.com/promgov/promgov/internal/grpcpool"
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

// clientPool is the distributor's grpcpool.Pool: one connection per
// ingester, with client-side health checking, reused for every push and by
// the analytics fan-out. It is safe for concurrent use.
type clientPool struct {
	*grpcpool.Pool
}

// newClientPool dials with the defaults and then dialOpts, which may
// replace the (plaintext) transport credentials.
func newClientPool(maxSendMsgSize int, dialOpts ...grpc.DialOption) *clientPool {
	return &clientPool{grpcpool.New(append([]grpc.DialOption{
		grpc.WithDefaultServiceConfig(serviceConfig),
		// The batch of a Push goes to the transport as it is (the codec
		// passes every other message to the default one).
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxSendMsgSize), grpc.ForceCodecV2(ingesterv1.NewCodec())),
		// A push of a few hundred series (tens of KiB) leaves in one write
		// instead of one per 32 KiB (gRPC's default); the buffer is
		// pooled between writes.
		grpc.WithWriteBufferSize(pushWriteBufferSize),
	}, dialOpts...)...)}
}

// Push sends req to the ingester at addr.
func (p *clientPool) Push(ctx context.Context, addr string, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	conn, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return ingesterv1.NewIngesterServiceClient(conn).Push(ctx, req)
}

func (p *clientPool) conn(addr string) (*grpc.ClientConn, error) {
	c, err := p.Conn(addr)
	if err != nil {
		return nil, fmt.Errorf("ingester: %w", err)
	}
	return c, nil
}

// retain closes connections to addresses not in keep (ingesters that left).
func (p *clientPool) retain(keep map[string]bool) { p.Retain(keep) }

// close closes every connection.
func (p *clientPool) close() { p.Close() }
