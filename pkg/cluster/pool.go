package cluster

import (
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Clients gives a client of the ingester at a gRPC address. Implementations
// must be safe for concurrent use and reuse connections.
type Clients interface {
	Client(addr string) (ingesterv1.IngesterServiceClient, error)
}

var _ Clients = (*Pool)(nil)

// MaxRecvMsgSize is the largest answer cluster calls accept (sketches and
// exported metric state can be several MiB).
const MaxRecvMsgSize = 256 << 20

// Pool keeps one gRPC connection per ingester address, for calls between
// ingesters. Unlike the distributor's Push connections it does not check
// gRPC health: a LEAVING ingester that stopped taking pushes still answers
// handoff and sync calls while it drains. Safe for concurrent use.
type Pool struct {
	opts   []grpc.DialOption // after the defaults
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewPool returns an empty pool; Close it when done. opts follow the
// defaults, so they may replace the (plaintext) transport credentials.
func NewPool(opts ...grpc.DialOption) *Pool {
	return &Pool{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// Client returns a client of the ingester at addr, dialling on first use.
func (p *Pool) Client(addr string) (ingesterv1.IngesterServiceClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("dial ingester %s: pool closed", addr)
	}
	if c, ok := p.conns[addr]; ok {
		return ingesterv1.NewIngesterServiceClient(c), nil
	}
	c, err := grpc.NewClient(addr, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize)),
	}, p.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial ingester %s: %w", addr, err)
	}
	p.conns[addr] = c
	return ingesterv1.NewIngesterServiceClient(c), nil
}

// Retain closes the connections to addresses not in keep.
func (p *Pool) Retain(keep map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		if !keep[addr] {
			_ = c.Close()
			delete(p.conns, addr)
		}
	}
}

// Close closes every connection; later Client calls fail.
func (p *Pool) Close() {
	p.Retain(nil)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}
