package distributor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/recovery"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// panicPusher panics in the push to one ingester, as a bug there would: a
// fault no real part produces on demand.
type panicPusher struct{ addr string }

func (p panicPusher) Send(_ context.Context, addr string, _ *ingesterv1.PushRequest) PendingPush {
	if addr == p.addr {
		panic("bug in the push to " + addr)
	}
	return answered{resp: &ingesterv1.PushResponse{}}
}

// TestPushPanicReachesTheEdge: a panic in the push to one ingester is
// answered 500 by the HTTP edge's recovery and counted, instead of killing
// the distributor; the next request is answered too.
func TestPushPanicReachesTheEdge(t *testing.T) {
	var members []ring.Member
	for i := range 2 {
		members = append(members, ring.Member{Name: fmt.Sprint("i", i), Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: fmt.Sprint("a", i)})
	}
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 31, ReplicationFactor: 5, Load: 1.25}, members)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	d := New(Config{RemoteWrite: remotewrite.DefaultConfig(), PushTimeout: time.Second}, Deps{
		Ring: staticPlacer{p}, Pusher: panicPusher{addr: "a1"}, Logger: logger, Registerer: reg,
	})
	h := recovery.New(logger, reg).HTTP(d)

	body := v1Body(t, manyMetrics(50)) // spread over both ingesters
	for range 2 {
		w := post(t, h, "application/x-protobuf", body, "team-a")
		require.Equal(t, http.StatusInternalServerError, w.Code, w.Body.String())
	}
	n, err := testutil.GatherAndCount(reg, "promgov_request_panics_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}
