package distributor

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // enables client-side health checking

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// serviceConfig turns on client-side gRPC health checking: a connection to
// an ingester that reports NOT_SERVING (it is leaving) fails fast instead of
// taking new pushes.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "promgov.ingester.v1.IngesterService"}
}`

// clientPool keeps one gRPC connection per ingester address and reuses it
// for every push. It is safe for concurrent use.
type clientPool struct {
	maxSendMsgSize int
	dialOpts       []grpc.DialOption // after the defaults (SetDialOptions)

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newClientPool(maxSendMsgSize int) *clientPool {
	return &clientPool{maxSendMsgSize: maxSendMsgSize, conns: map[string]*grpc.ClientConn{}}
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(p.maxSendMsgSize)),
	}, p.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial ingester %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
}

// retain closes connections to addresses not in keep (ingesters that left).
func (p *clientPool) retain(keep map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		if !keep[addr] {
			_ = c.Close()
			delete(p.conns, addr)
		}
	}
}

// close closes every connection.
func (p *clientPool) close() {
	p.retain(nil)
}
