package distributor

import (
	"errors"

	"github.com/promgov/promgov/pkg/cluster"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

var _ cluster.Clients = (*Distributor)(nil)

// errNoPool is returned by Client when the distributor was built with an
// injected Pusher and so holds no gRPC connections.
var errNoPool = errors.New("distributor holds no gRPC connections (built with an injected Pusher)")

// Client returns a cluster-service client of the ingester at addr over the connection the
// distributor pushes on, so the analytics fan-out (cluster.FanOut) reuses
// those connections. It is safe for concurrent use.
func (d *Distributor) Client(addr string) (ingesterv1.ClusterServiceClient, error) {
	if d.pool == nil {
		return nil, errNoPool
	}
	conn, err := d.pool.conn(addr)
	if err != nil {
		return nil, err
	}
	return ingesterv1.NewClusterServiceClient(conn), nil
}
