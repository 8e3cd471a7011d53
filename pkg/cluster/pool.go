package cluster

import (
	"google.golang.org/grpc"

	"github.com/promgov/promgov/internal/grpcpool"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Clients gives a cluster-service client of the ingester at a gRPC
// address. Implementations must be safe for concurrent use and reuse
// connections.
type Clients interface {
	Client(addr string) (ingesterv1.ClusterServiceClient, error)
}

var _ Clients = (*Pool)(nil)

// MaxRecvMsgSize is the largest answer cluster calls accept (sketches and
// exported metric state can be several MiB).
const MaxRecvMsgSize = 256 << 20

// Pool is the ingesters' connection pool for calls between ingesters (a
// grpcpool.Pool; its Run closes connections to peers that left the ring).
// Unlike the distributor's Push connections it does not check gRPC health:
// a LEAVING ingester that stopped taking pushes still answers handoff and
// sync calls while it drains. Safe for concurrent use.
type Pool struct {
	*grpcpool.Pool
}

// NewPool returns an empty pool; Run or Close it.
func NewPool() *Pool {
	return &Pool{grpcpool.New(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize)))}
}

// Client returns a client of the ingester at addr, dialling on first use.
func (p *Pool) Client(addr string) (ingesterv1.ClusterServiceClient, error) {
	c, err := p.Conn(addr)
	if err != nil {
		return nil, err
	}
	return ingesterv1.NewClusterServiceClient(c), nil
}
