package grpcpool

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/ring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPoolReusesAndRetains(t *testing.T) {
	p := New()
	a, err := p.Conn("127.0.0.1:1")
	require.NoError(t, err)
	again, err := p.Conn("127.0.0.1:1")
	require.NoError(t, err)
	require.Same(t, a, again, "one connection per address")
	_, err = p.Conn("127.0.0.1:2")
	require.NoError(t, err)
	require.Equal(t, 2, p.Len())

	p.RetainMembers([]ring.Member{{Name: "i1", GRPCAddress: "127.0.0.1:1"}, {Name: "d1"}})
	require.Equal(t, 1, p.Len())

	p.Close()
	p.Close()
	require.Zero(t, p.Len())
	_, err = p.Conn("127.0.0.1:1")
	require.ErrorContains(t, err, "connection pool closed")
}

// members is a membership whose changes the test makes.
type members struct {
	mu      sync.Mutex
	list    []ring.Member
	changed chan struct{}
}

func (m *members) Members() []ring.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]ring.Member(nil), m.list...)
}

func (m *members) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *members) set(list ...ring.Member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = list
	close(m.changed)
	m.changed = make(chan struct{})
}

// TestRunFollowsMembership: a member that leaves the ring loses its
// connection at the next change; stopping Run closes the pool.
func TestRunFollowsMembership(t *testing.T) {
	i1, i2 := ring.Member{Name: "i1", GRPCAddress: "127.0.0.1:1"}, ring.Member{Name: "i2", GRPCAddress: "127.0.0.1:2"}
	m := &members{list: []ring.Member{i1, i2}, changed: make(chan struct{})}
	p := New()
	for _, addr := range []string{i1.GRPCAddress, i2.GRPCAddress} {
		_, err := p.Conn(addr)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, m) }()

	m.set(i1)
	require.Eventually(t, func() bool { return p.Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	_, err := p.Conn(i1.GRPCAddress)
	require.NoError(t, err)
	require.Equal(t, 1, p.Len(), "the member's connection stays")

	cancel()
	require.NoError(t, <-done)
	_, err = p.Conn(i1.GRPCAddress)
	require.Error(t, err, "closed when Run returns")
}
