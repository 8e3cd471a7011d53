package ring

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

const (
	converge = 10 * time.Second
	tick     = 20 * time.Millisecond
)

// testConfig is a fast-gossip config on loopback with a free port.
func testConfig(name string, join ...string) Config {
	cfg := DefaultConfig()
	cfg.BindAddress = "127.0.0.1:0"
	cfg.NodeName = name
	cfg.Join = join
	cfg.GossipInterval = 50 * time.Millisecond
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.PushPullInterval = time.Second
	cfg.JoinRetryInterval = 50 * time.Millisecond
	cfg.JoinRetryMaxInterval = 200 * time.Millisecond
	cfg.UpdateTimeout = time.Second
	cfg.LeaveTimeout = 2 * time.Second
	return cfg
}

// testLogger logs to stderr only with -v, to keep failures debuggable.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
}

// node is a Ring running in the background for a test.
type node struct {
	*Ring
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Run and returns its error.
func (n *node) stop(t *testing.T) error {
	t.Helper()
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err // keep it for the cleanup
		return err
	case <-time.After(converge):
		t.Fatalf("Run of %s did not return", n.Self().Name)
		return nil
	}
}

// startNode creates a Ring and runs it until the test ends.
func startNode(t *testing.T, cfg Config, role Role, grpc string) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(cfg, role, grpc, testLogger(t), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{Ring: r, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- r.Run(ctx) }()
	t.Cleanup(func() { _ = n.stop(t) })
	return n
}

// memberStates returns name → state of the members r sees.
func memberStates(r *Ring) map[string]State {
	out := map[string]State{}
	for _, m := range r.Members() {
		out[m.Name] = m.State
	}
	return out
}

func TestClusterLifecycle(t *testing.T) {
	seed := startNode(t, testConfig("ingester-0"), RoleIngester, "127.0.0.1:9001")
	join := seed.BindAddress()
	ing1 := startNode(t, testConfig("ingester-1", join), RoleIngester, "127.0.0.1:9002")
	ing2 := startNode(t, testConfig("ingester-2", join), RoleIngester, "127.0.0.1:9003")
	dist := startNode(t, testConfig("distributor-0", ing1.BindAddress()), RoleDistributor, "")
	all := []*node{seed, ing1, ing2, dist}

	// Everyone converges on four members; ingesters are JOINING and own nothing.
	want := map[string]State{"ingester-0": StateJoining, "ingester-1": StateJoining, "ingester-2": StateJoining, "distributor-0": StateActive}
	for _, n := range all {
		require.Eventually(t, func() bool { return fmt.Sprint(memberStates(n.Ring)) == fmt.Sprint(want) },
			converge, tick, "%s sees %v", n.Self().Name, memberStates(n.Ring))
	}
	_, ok := dist.Placement().Owner(Key(nil, "tenant", "up"))
	require.False(t, ok, "JOINING ingesters must own nothing")
	require.Equal(t, 1.0, testutil.ToFloat64(dist.metrics.members.WithLabelValues("distributor", "ACTIVE")))
	require.Equal(t, 3.0, testutil.ToFloat64(dist.metrics.members.WithLabelValues("ingester", "JOINING")))

	// JOINING → ACTIVE reaches the distributor and the placements agree.
	changed := dist.Changed()
	for _, n := range []*node{seed, ing1, ing2} {
		require.NoError(t, n.SetState(StateActive))
		require.Equal(t, StateActive, n.Self().State)
	}
	select {
	case <-changed:
	case <-time.After(converge):
		t.Fatal("distributor placement did not change")
	}
	for _, n := range all {
		require.Eventually(t, func() bool { return n.Placement().NumIngesters() == 3 }, converge, tick, n.Self().Name)
	}
	fp := dist.Placement().Fingerprint()
	for _, n := range all {
		require.Equal(t, fp, n.Placement().Fingerprint(), n.Self().Name)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range randomKeys(rng, 1000) {
		a, okA := dist.Placement().Owner(k)
		b, okB := seed.Placement().Owner(k)
		require.True(t, okA && okB)
		require.Equal(t, a, b)
	}
	for _, name := range []string{"ingester-0", "ingester-1", "ingester-2"} {
		require.Positive(t, dist.Placement().Partitions(name), name)
	}
	require.Zero(t, dist.Placement().Partitions("distributor-0"))
	owned := testutil.ToFloat64(seed.metrics.ownedPartitions)
	require.Equal(t, float64(seed.Placement().Partitions("ingester-0")), owned)

	// ACTIVE → LEAVING (drain) takes ingester-2 out of the placement but it stays a member.
	require.NoError(t, ing2.SetState(StateLeaving))
	require.Eventually(t, func() bool {
		return dist.Placement().NumIngesters() == 2 && memberStates(dist.Ring)["ingester-2"] == StateLeaving
	}, converge, tick)
	require.Zero(t, dist.Placement().Partitions("ingester-2"))

	// Graceful leave of ingester-1 removes it everywhere.
	require.NoError(t, ing1.stop(t))
	for _, n := range []*node{seed, ing2, dist} {
		require.Eventually(t, func() bool {
			_, present := memberStates(n.Ring)["ingester-1"]
			return !present && n.Placement().NumIngesters() == 1
		}, converge, tick, n.Self().Name)
	}
	only, ok := dist.Placement().Owner(Key(nil, "tenant", "up"))
	require.True(t, ok)
	require.Equal(t, Member{Name: "ingester-0", Role: RoleIngester, State: StateActive, Address: seed.Self().Address, GRPCAddress: "127.0.0.1:9001"}, only)
	require.Equal(t, 1.0, dist.Placement().Share("ingester-0"))
	require.GreaterOrEqual(t, testutil.ToFloat64(dist.metrics.rebuilds), 3.0)
	require.GreaterOrEqual(t, testutil.ToFloat64(ing1.metrics.joins.WithLabelValues("success")), 1.0)
	require.ErrorIs(t, ing1.SetState(StateActive), ErrClosed)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func TestJoinRetriesUntilSeedStarts(t *testing.T) {
	seedAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	late := startNode(t, testConfig("late-joiner", seedAddr), RoleDistributor, "")

	// The seed is not there yet: joins fail and are retried.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(late.metrics.joins.WithLabelValues("failure")) >= 2
	}, converge, tick)
	require.Len(t, late.Members(), 1)

	seedCfg := testConfig("seed")
	seedCfg.BindAddress = seedAddr
	seed := startNode(t, seedCfg, RoleIngester, "127.0.0.1:9100")
	require.Equal(t, seedAddr, seed.BindAddress())
	require.Eventually(t, func() bool { return len(late.Members()) == 2 && len(seed.Members()) == 2 }, converge, tick)
	require.Equal(t, 1.0, testutil.ToFloat64(late.metrics.joins.WithLabelValues("success")))
}

// TestRejoinMergesGroupsThatFormedApart is a first install where every pod
// starts at once: x reaches only itself through its join addresses (y is not
// up yet), counts that as joined, and y starts as a seed of its own. The
// periodic rejoin merges the two groups; without it they stay apart.
func TestRejoinMergesGroupsThatFormedApart(t *testing.T) {
	xAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	yAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))

	xCfg := testConfig("x", xAddr, yAddr)
	xCfg.BindAddress = xAddr
	xCfg.RejoinInterval = 100 * time.Millisecond
	x := startNode(t, xCfg, RoleIngester, "127.0.0.1:9201")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(x.metrics.joins.WithLabelValues("success")) >= 1
	}, converge, tick, "x joins itself")
	require.Len(t, x.Members(), 1)

	yCfg := testConfig("y")
	yCfg.BindAddress = yAddr
	y := startNode(t, yCfg, RoleIngester, "127.0.0.1:9202")
	require.Eventually(t, func() bool { return len(x.Members()) == 2 && len(y.Members()) == 2 }, converge, tick,
		"x sees %v, y sees %v", memberStates(x.Ring), memberStates(y.Ring))
}

func TestRejoinDisabled(t *testing.T) {
	xAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	yAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	xCfg := testConfig("x", xAddr, yAddr)
	xCfg.BindAddress = xAddr
	xCfg.RejoinInterval = 0
	x := startNode(t, xCfg, RoleIngester, "127.0.0.1:9203")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(x.metrics.joins.WithLabelValues("success")) >= 1
	}, converge, tick)
	yCfg := testConfig("y")
	yCfg.BindAddress = yAddr
	y := startNode(t, yCfg, RoleIngester, "127.0.0.1:9204")
	// With rejoin off, x never contacts y again: y's gossip sees only itself.
	// A member joining y (z) proves y's gossip is running meanwhile.
	z := startNode(t, testConfig("z", yAddr), RoleDistributor, "")
	require.Eventually(t, func() bool { return len(y.Members()) == 2 && len(z.Members()) == 2 }, converge, tick)
	require.Len(t, x.Members(), 1)
	require.Equal(t, 1.0, testutil.ToFloat64(x.metrics.joins.WithLabelValues("success")))
}

func TestNewBindsAndResolvesPort(t *testing.T) {
	cfg := testConfig("")
	r, err := New(cfg, RoleIngester, "127.0.0.1:9095", nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close(context.Background())) }()

	host, port, err := net.SplitHostPort(r.BindAddress())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NotEqual(t, "0", port)
	hostname, _ := os.Hostname()
	self := r.Self()
	require.Equal(t, hostname+"-"+port, self.Name)
	require.Equal(t, r.BindAddress(), self.Address)
	require.Equal(t, StateJoining, self.State)
	require.Equal(t, []Member{self}, r.Members())
	require.NotNil(t, r.Placement())
	require.Zero(t, r.Placement().NumIngesters())

	// A second node on the same port fails with a clear error.
	cfg.BindAddress = r.BindAddress()
	_, err = New(cfg, RoleIngester, "127.0.0.1:9095", nil, nil)
	require.ErrorContains(t, err, "bind")
}

func TestNewRejects(t *testing.T) {
	tests := map[string]struct {
		cfg  func() Config
		role Role
		grpc string
		want string
	}{
		"invalid config":        {cfg: func() Config { c := testConfig("x"); c.Load = 0.5; return c }, role: RoleIngester, grpc: "a:1", want: "memberlist.load"},
		"unknown role":          {cfg: func() Config { return testConfig("x") }, role: "querier", grpc: "a:1", want: "unknown role"},
		"ingester without grpc": {cfg: func() Config { return testConfig("x") }, role: RoleIngester, grpc: "", want: "gRPC address"},
		"grpc address too long": {cfg: func() Config { return testConfig("x") }, role: RoleIngester, grpc: string(make([]byte, 600)) + ":1", want: "byte limit"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg(), tc.role, tc.grpc, nil, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNewRegistersMetricsOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := New(testConfig("a"), RoleDistributor, "", nil, reg)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close(context.Background())) }()
	_, err = New(testConfig("b"), RoleDistributor, "", nil, reg)
	require.ErrorContains(t, err, "register ring metrics")

	n, err := testutil.GatherAndCount(reg, "promgov_ring_members", "promgov_ring_placement_rebuilds_total", "promgov_ring_gossip_health_score")
	require.NoError(t, err)
	require.Equal(t, 6+1+1, n)
}

func TestLifecycleErrors(t *testing.T) {
	r, err := New(testConfig("x"), RoleIngester, "127.0.0.1:1", nil, nil)
	require.NoError(t, err)
	require.ErrorContains(t, r.SetState("READY"), "unknown state")
	require.NoError(t, r.SetState(StateActive))
	require.Eventually(t, func() bool { return r.Placement().NumIngesters() == 1 }, converge, tick, "a lone ACTIVE ingester owns everything")
	require.NoError(t, r.SetState(StateActive), "setting the same state is a no-op")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	require.Eventually(t, func() bool { return r.running.Load() }, converge, tick)
	require.ErrorContains(t, r.Run(ctx), "twice")

	// Close ends Run without cancelling its context.
	require.NoError(t, r.Close(context.Background()))
	require.NoError(t, <-done)
	cancel()
	require.NoError(t, r.Close(context.Background()), "Close is idempotent")
	require.ErrorIs(t, r.SetState(StateLeaving), ErrClosed)

	r2, err := New(testConfig("y"), RoleDistributor, "", nil, nil)
	require.NoError(t, err)
	require.NoError(t, r2.Close(context.Background()))
	require.ErrorIs(t, r2.Run(context.Background()), ErrClosed)
}

func TestCrashedMemberIsRemoved(t *testing.T) {
	seed := startNode(t, testConfig("ingester-0"), RoleIngester, "127.0.0.1:9201")
	crash := startNode(t, testConfig("ingester-1", seed.BindAddress()), RoleIngester, "127.0.0.1:9202")
	dist := startNode(t, testConfig("distributor-0", seed.BindAddress()), RoleDistributor, "")
	require.NoError(t, seed.SetState(StateActive))
	require.NoError(t, crash.SetState(StateActive))
	require.Eventually(t, func() bool { return dist.Placement().NumIngesters() == 2 }, converge, tick)

	crashNode(t, crash)
	require.Eventually(t, func() bool {
		_, present := memberStates(dist.Ring)["ingester-1"]
		return !present && dist.Placement().NumIngesters() == 1
	}, converge, tick)
	require.Equal(t, 1.0, dist.Placement().Share("ingester-0"))
}

// crashNode simulates a crash: gossip stops without LEAVING or a leave
// message.
func crashNode(t *testing.T, n *node) {
	t.Helper()
	n.stopOnce.Do(func() {
		require.NoError(t, n.ml.Shutdown())
		n.stateMu.Lock()
		n.stopped = true
		n.stateMu.Unlock()
		n.stopLoop()
	})
}

// TestRestartAtNewAddressIsTakenUp: a member that crashed comes back under
// its name at a new address (a pod with a new IP) while the others still
// hold its previous run. They take the new address soon after they may (once
// they have seen the previous run fail and dead_node_reclaim_time passed),
// not at their next full-state exchange, a minute away here.
func TestRestartAtNewAddressIsTakenUp(t *testing.T) {
	cfg := func(name string, join ...string) Config {
		c := testConfig(name, join...)
		c.PushPullInterval = time.Minute
		c.RejoinInterval = time.Minute
		c.DeadNodeReclaimTime = 500 * time.Millisecond
		return c
	}
	seed := startNode(t, cfg("ingester-0"), RoleIngester, "127.0.0.1:9301")
	dist := startNode(t, cfg("distributor-0", seed.BindAddress()), RoleDistributor, "")
	old := startNode(t, cfg("ingester-1", seed.BindAddress()), RoleIngester, "127.0.0.1:9302")
	require.NoError(t, seed.SetState(StateActive))
	require.NoError(t, old.SetState(StateActive))
	require.Eventually(t, func() bool { return dist.Placement().NumIngesters() == 2 }, converge, tick)

	crashNode(t, old)
	restarted := startNode(t, cfg("ingester-1", seed.BindAddress(), dist.BindAddress()), RoleIngester, "127.0.0.1:9303")
	require.NoError(t, restarted.SetState(StateActive))
	addr := restarted.Self().Address
	require.NotEqual(t, old.Self().Address, addr)
	for _, n := range []*node{seed, dist} {
		require.Eventually(t, func() bool {
			for _, m := range n.Members() {
				if m.Name == "ingester-1" {
					return m.Address == addr && m.State == StateActive
				}
			}
			return false
		}, converge, tick, "%s never took up ingester-1 at its new address", n.Self().Name)
	}
	require.Equal(t, 2, dist.Placement().NumIngesters())
}

func TestClusterLabelKeepsClustersApart(t *testing.T) {
	cfgA := testConfig("a")
	cfgA.ClusterLabel = "prod"
	a := startNode(t, cfgA, RoleIngester, "127.0.0.1:9301")
	cfgB := testConfig("b", a.BindAddress())
	cfgB.ClusterLabel = "staging"
	b := startNode(t, cfgB, RoleDistributor, "")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(b.metrics.joins.WithLabelValues("failure")) >= 2
	}, converge, tick)
	require.Len(t, a.Members(), 1)
	require.Len(t, b.Members(), 1)
}

// TestGRPCAddressOnEveryInterface: an ingester whose gRPC server listens
// on every interface (the default :9095) is advertised on the IP gossip
// advertises, which other members can dial; an explicit host is kept.
func TestGRPCAddressOnEveryInterface(t *testing.T) {
	for name, tc := range map[string]struct{ listen, want string }{
		"empty host":    {":9095", "127.0.0.1:9095"},
		"ipv4 any":      {"0.0.0.0:9095", "127.0.0.1:9095"},
		"ipv6 any":      {"[::]:9095", "127.0.0.1:9095"},
		"explicit host": {"10.1.2.3:9095", "10.1.2.3:9095"},
	} {
		t.Run(name, func(t *testing.T) {
			ing := startNode(t, testConfig("ingester-a"), RoleIngester, tc.listen)
			require.Equal(t, tc.want, ing.Self().GRPCAddress)
			dist := startNode(t, testConfig("distributor-a", ing.BindAddress()), RoleDistributor, "")
			require.NoError(t, ing.SetState(StateActive))
			require.Eventually(t, func() bool {
				for _, m := range dist.Members() {
					if m.Name == "ingester-a" {
						return m.GRPCAddress == tc.want && m.State == StateActive
					}
				}
				return false
			}, converge, tick, "the distributor never saw ingester-a at %s", tc.want)
		})
	}
}

// TestMembersChangedWithoutPlacementChange: an ingester this node first
// sees already LEAVING (its ACTIVE spell ended before gossip brought it
// here: it joined, pulled state and was stopped at once) changes no
// placement, so Changed does not fire; MembersChanged does, and the
// member is listed LEAVING, so the handoff can pull what it took.
func TestMembersChangedWithoutPlacementChange(t *testing.T) {
	before := goleak.IgnoreCurrent()
	a := startNode(t, testConfig("ingester-a"), RoleIngester, "127.0.0.1:9001")
	require.NoError(t, a.SetState(StateActive))
	require.Eventually(t, func() bool { return a.Placement().NumIngesters() == 1 }, converge, tick)
	fp := a.Placement().Fingerprint()
	changed, members := a.Changed(), a.MembersChanged()

	// b advertises LEAVING before it joins: a never sees it ACTIVE.
	reg := prometheus.NewRegistry()
	b, err := New(testConfig("ingester-b", a.BindAddress()), RoleIngester, "127.0.0.1:9002", testLogger(t), reg)
	require.NoError(t, err)
	require.NoError(t, b.SetState(StateLeaving))
	ctx, cancel := context.WithCancel(context.Background())
	bn := &node{Ring: b, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { bn.done <- b.Run(ctx) }()
	t.Cleanup(func() { _ = bn.stop(t) })

	select {
	case <-members:
	case <-time.After(converge):
		t.Fatal("MembersChanged did not fire when ingester-b appeared")
	}
	require.Eventually(t, func() bool { return memberStates(a.Ring)["ingester-b"] == StateLeaving }, converge, tick)
	require.Equal(t, fp, a.Placement().Fingerprint(), "a LEAVING ingester is not placed")
	select {
	case <-changed:
		t.Fatal("the placement changed")
	default:
	}

	// Its departure is a member change too.
	members = a.MembersChanged()
	require.NoError(t, bn.stop(t))
	select {
	case <-members:
	case <-time.After(converge):
		t.Fatal("MembersChanged did not fire when ingester-b left")
	}
	require.Eventually(t, func() bool { _, ok := memberStates(a.Ring)["ingester-b"]; return !ok }, converge, tick)

	// a may have been probing b when b went: memberlist's probe outlives
	// its Shutdown by up to a probe interval. Wait for it, so that the
	// package's leak check does not see it.
	require.NoError(t, a.stop(t))
	require.Eventually(t, func() bool { return goleak.Find(before) == nil }, converge, tick,
		"goroutines of the two nodes still running after both stopped")
}
