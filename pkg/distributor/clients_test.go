package distributor

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/usage"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func TestClientReusesPushConnections(t *testing.T) {
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ingesterv1.RegisterClusterServiceServer(srv, ingester.NewAnalytics(ingester.AnalyticsDeps{Node: "i", State: tr, Access: usage.NewAccessStats(0, 0)}))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { srv.Stop(); <-done }()

	clients := NewClients(Config{MaxSendMsgSize: 1 << 20})
	c, err := clients.Client(ln.Addr().String())
	require.NoError(t, err)
	// The push connections check gRPC health, which this bare server does
	// not serve: the check is skipped then, and the call goes through.
	_, err = c.QueryTenants(context.Background(), &ingesterv1.QueryTenantsRequest{Query: &ingesterv1.CardinalityQuery{}})
	require.NoError(t, err)

	clients.Close()
	_, err = clients.Client(ln.Addr().String())
	require.Error(t, err, "a closed pool dials nothing")
}
