package cluster

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

var testPlacement = ring.PlacementConfig{PartitionCount: 31, ReplicationFactor: 20, Load: 1.25}

// testNode is one ingester: a Tracker served over a real gRPC server on
// loopback by ingester.Analytics.
type testNode struct {
	name    string
	addr    string
	tracker *cardinality.Tracker
	srv     *grpc.Server
}

func (n *testNode) member(state ring.State) ring.Member {
	return ring.Member{Name: n.name, Role: ring.RoleIngester, State: state, GRPCAddress: n.addr}
}

// startNode serves a new tracker with cfg; the server stops at cleanup.
func startNode(t *testing.T, name string, cfg cardinality.Config) *testNode {
	t.Helper()
	tr, err := cardinality.New(cfg, cardinality.Options{})
	require.NoError(t, err)
	return serveNode(t, name, tr)
}

func serveNode(t *testing.T, name string, tr *cardinality.Tracker) *testNode {
	t.Helper()
	return serveNodeB(t, name, tr)
}

// serveNodeB is serveNode for tests and benchmarks.
func serveNodeB(t testing.TB, name string, tr *cardinality.Tracker) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ingesterv1.RegisterClusterServiceServer(srv, ingester.NewAnalytics(ingester.AnalyticsDeps{Node: name, State: tr, Access: usage.NewAccessStats(0, 0)}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	n := &testNode{name: name, addr: ln.Addr().String(), tracker: tr, srv: srv}
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return n
}

// stop stops the node's server (it stops answering).
func (n *testNode) stop() { n.srv.Stop() }

// fakeRing is a settable membership and placement.
type fakeRing struct {
	mu      sync.Mutex
	self    ring.Member
	members []ring.Member
	p       *ring.Placement
	changed chan struct{}
	// membersChanged fires at every set, like changed.
	membersChanged chan struct{}
}

func newFakeRing(t testing.TB, self ring.Member, members ...ring.Member) *fakeRing {
	t.Helper()
	f := &fakeRing{self: self, changed: make(chan struct{}), membersChanged: make(chan struct{})}
	f.set(t, members...)
	return f
}

func (f *fakeRing) set(t testing.TB, members ...ring.Member) {
	t.Helper()
	p, err := ring.NewPlacement(testPlacement, members)
	require.NoError(t, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = members
	if f.p == nil || p.Fingerprint() != f.p.Fingerprint() {
		f.p = p
		close(f.changed)
		f.changed = make(chan struct{})
	}
	close(f.membersChanged)
	f.membersChanged = make(chan struct{})
}

func (f *fakeRing) Members() []ring.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ring.Member(nil), f.members...)
}

func (f *fakeRing) Self() ring.Member { return f.self }

func (f *fakeRing) Placement() *ring.Placement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p
}

func (f *fakeRing) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeRing) MembersChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.membersChanged
}

var _ Placements = (*fakeRing)(nil)

// series returns series i of metric with labels id and pod.
func series(tenant, metric string, i int) *cardinality.Series {
	b := labels.NewScratchBuilder(3)
	b.Add(model.MetricNameLabel, metric)
	b.Add("id", strconv.Itoa(i))
	b.Add("pod", "pod-"+strconv.Itoa(i%3))
	b.Sort()
	ls := b.Labels()
	return &cardinality.Series{Tenant: tenant, Metric: metric, Hash: ls.Hash(), Labels: ls, Samples: 1, Bytes: 100}
}

// observe sends series [from, to) of metric to tr and returns how many
// were admitted.
func observe(tr *cardinality.Tracker, tenant, metric string, from, to int) int {
	admitted := 0
	now := time.Now()
	for i := from; i < to; i++ {
		if tr.Observe(series(tenant, metric, i), now).Admit {
			admitted++
		}
	}
	return admitted
}

func limitsConfig(l cardinality.Limits) cardinality.Config {
	c := cardinality.DefaultConfig()
	c.Limits.Defaults = l
	return c
}

func testConfig() Config {
	c := DefaultConfig()
	c.SyncInterval = 50 * time.Millisecond
	c.HandoffSettle = 0
	return c
}
