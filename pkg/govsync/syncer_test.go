package govsync

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ruleDoc(name string) []byte {
	return []byte("rules:\n  - name: " + name + "\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: " + name + "_.*\n        action: drop\n")
}

// testNode is a ring member with a Syncer whose apply records the rule
// names it ran, and can be told to reject a rule name.
type testNode struct {
	ring   *ring.Ring
	syncer *Syncer
	reg    *prometheus.Registry
	mu     sync.Mutex
	rules  string
	reject string
}

func (n *testNode) running() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rules
}

func startNode(t *testing.T, name, dir string, join ...string) *testNode {
	t.Helper()
	cfg := ring.DefaultConfig()
	cfg.BindAddress, cfg.NodeName, cfg.Join = "127.0.0.1:0", name, join
	cfg.GossipInterval, cfg.ProbeInterval, cfg.PushPullInterval = 50*time.Millisecond, 200*time.Millisecond, time.Second
	cfg.JoinRetryInterval, cfg.JoinRetryMaxInterval = 50*time.Millisecond, 200*time.Millisecond
	cfg.LeaveTimeout = 2 * time.Second
	r, err := ring.New(cfg, ring.RoleDistributor, "", nil, nil)
	require.NoError(t, err)
	b, err := filesystem.NewBucket(dir)
	require.NoError(t, err)
	n := &testNode{ring: r, reg: prometheus.NewRegistry()}
	n.syncer = New(govstore.New(b), func(doc govstore.Document) error {
		n.mu.Lock()
		defer n.mu.Unlock()
		var names []string
		for _, r := range doc.Rules {
			if r.Name == n.reject && n.reject != "" {
				return errors.New("this node rejects rule " + r.Name)
			}
			names = append(names, r.Name)
		}
		n.rules = strings.Join(names, ",")
		return nil
	}, r, Options{Node: name, Role: "distributor", PollInterval: time.Minute, Timeout: 5 * time.Second, Registerer: n.reg})
	r.SetGossip(n.syncer)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	go func() { defer wg.Done(); _ = n.syncer.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return n
}

// seededStore is a filesystem store in dir seeded with rule "one" (its
// version 1).
func seededStore(t *testing.T, dir string) (*govstore.Store, *govstore.Version) {
	t.Helper()
	b, err := filesystem.NewBucket(dir)
	require.NoError(t, err)
	store := govstore.New(b)
	v1, err := store.Seed(context.Background(), ruleDoc("one"), "seed")
	require.NoError(t, err)
	return store, v1
}

func TestRolloutOverGossip(t *testing.T) {
	dir := t.TempDir()
	store, _ := seededStore(t, dir)
	ctx := context.Background()

	a := startNode(t, "a", dir)
	bn := startNode(t, "b", dir, a.ring.BindAddress())
	require.Eventually(t, func() bool { return len(a.ring.Members()) == 2 && len(bn.ring.Members()) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return a.running() == "one" && bn.running() == "one" }, 5*time.Second, 20*time.Millisecond)

	// A write on a reaches b by the gossip notice (polling is 1 min here).
	v2, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("two"), IfMatch: 1, Author: "t"})
	require.NoError(t, err)
	start := time.Now()
	a.syncer.Notify(v2.Number)
	require.Eventually(t, func() bool { return bn.running() == "two" }, 5*time.Second, 10*time.Millisecond)
	t.Logf("rollout to the other node took %s", time.Since(start))
	require.InDelta(t, 2, testutil.ToFloat64(bn.syncer.active), 0)
	require.Eventually(t, func() bool {
		st := a.syncer.ClusterStatus()
		return len(st.Nodes) == 2 && len(st.Laggards) == 0 && st.Active == 2
	}, 5*time.Second, 20*time.Millisecond)

	// b rejects version 3: it keeps version 2, marks 3 failed, and a,
	// which applied 3, goes back to 2.
	bn.mu.Lock()
	bn.reject = "three"
	bn.mu.Unlock()
	v3, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("three"), IfMatch: 2, Author: "t"})
	require.NoError(t, err)
	a.syncer.Notify(v3.Number)
	require.Eventually(t, func() bool {
		f, err := store.Failed(ctx)
		return err == nil && f[3].Node == "b"
	}, 5*time.Second, 20*time.Millisecond, "a=%q b=%q self=%+v", a.running(), bn.running(), bn.syncer.Self())
	require.Eventually(t, func() bool { return a.running() == "two" && bn.running() == "two" }, 5*time.Second, 20*time.Millisecond)
	require.InDelta(t, 1, testutil.ToFloat64(bn.syncer.failures), 0)
	require.Contains(t, bn.syncer.Self().Error, "version 3")
}

func TestGossipDecodingIsBounded(t *testing.T) {
	for name, b := range map[string][]byte{
		"oversized":  make([]byte, maxMessageBytes+1),
		"not json":   []byte("{"),
		"no kind":    []byte(`{"v":3}`),
		"zero":       []byte(`{"k":"active","v":0}`),
		"no node":    []byte(`{"k":"node","s":{"v":1}}`),
		"long error": []byte(`{"k":"node","s":{"node":"x","error":"` + strings.Repeat("e", 600) + `"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeMessage(b)
			require.Error(t, err)
		})
	}
	_, err := decodeState(make([]byte, maxStateBytes+1))
	require.Error(t, err)
}

func FuzzGossipMessage(f *testing.F) {
	f.Add([]byte(`{"k":"active","v":3}`))
	f.Add([]byte(`{"k":"node","s":{"node":"a","version":2}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeMessage(b)
		_, _ = decodeState(b)
	})
}

// TestShadowCandidateRunsBesideActive: a shadow version runs its changed
// rules as shadow copies next to the active version on every node; a
// candidate a node rejects is marked failed and the active version runs
// alone again; promoting a candidate makes it the only one.
func TestShadowCandidateRunsBesideActive(t *testing.T) {
	dir := t.TempDir()
	store, _ := seededStore(t, dir)
	ctx := context.Background()
	a := startNode(t, "a", dir)
	bn := startNode(t, "b", dir, a.ring.BindAddress())
	require.Eventually(t, func() bool { return a.running() == "one" && bn.running() == "one" }, 10*time.Second, 20*time.Millisecond)

	v2, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("two"), IfMatch: 1, Author: "t", Mode: govstore.ModeShadow})
	require.NoError(t, err)
	a.syncer.Notify(v2.Number)
	for _, n := range []*testNode{a, bn} {
		require.Eventually(t, func() bool { return n.running() == "two@v2,one" }, 5*time.Second, 10*time.Millisecond, "runs %q", n.running())
		require.InDelta(t, 2, testutil.ToFloat64(n.syncer.shadow), 0)
		require.InDelta(t, 1, testutil.ToFloat64(n.syncer.active), 0)
	}
	require.Eventually(t, func() bool {
		st := a.syncer.ClusterStatus()
		return len(st.Nodes) == 2 && len(st.Laggards) == 0 && st.Active == 1 && st.Shadow == 2
	}, 5*time.Second, 20*time.Millisecond)
	st := a.syncer.ClusterStatus()
	require.NotNil(t, st.ShadowRun)
	require.Equal(t, []string{"two@v2"}, st.ShadowRun.Rules)
	require.Len(t, st.ShadowRun.NotShadowed, 1, "rule one is removed by the candidate: %v", st.ShadowRun.NotShadowed)

	// b rejects the candidate's rule: version 3 is marked failed, both
	// nodes run version 1 alone.
	bn.mu.Lock()
	bn.reject = "three@v3"
	bn.mu.Unlock()
	v3, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("three"), IfMatch: 2, Author: "t", Mode: govstore.ModeShadow})
	require.NoError(t, err)
	a.syncer.Notify(v3.Number)
	require.Eventually(t, func() bool {
		f, err := store.Failed(ctx)
		return err == nil && f[3].Node == "b"
	}, 5*time.Second, 20*time.Millisecond)
	// Version 2 is the newest good shadow candidate again.
	require.Eventually(t, func() bool { return a.running() == "two@v2,one" && bn.running() == "two@v2,one" }, 5*time.Second, 20*time.Millisecond,
		"a=%q b=%q", a.running(), bn.running())

	// Promote 2: version 4 enforces "two" alone, no candidate is staged.
	v4, err := store.Write(ctx, govstore.WriteRequest{Body: ruleDoc("two"), IfMatch: 3, Author: "t"})
	require.NoError(t, err)
	a.syncer.Notify(v4.Number)
	for _, n := range []*testNode{a, bn} {
		require.Eventually(t, func() bool { return n.running() == "two" }, 5*time.Second, 10*time.Millisecond, "runs %q", n.running())
		require.Zero(t, testutil.ToFloat64(n.syncer.shadow))
	}
}
