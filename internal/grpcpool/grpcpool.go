// Package grpcpool keeps one gRPC client connection per node address, for
// every node-to-node call: distributors' pushes and analytics fan-outs,
// ingesters' peer sync and handoff. Run ties the pool to ring membership:
// connections to nodes that left the ring are closed.
package grpcpool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/promgov/promgov/pkg/ring"
)

// RetainInterval is how often Run also retains without a placement change:
// a member that leaves the ring after it stopped owning partitions (a
// LEAVING ingester that finished draining) changes no placement.
const RetainInterval = 10 * time.Second

// Pool keeps one connection per address, dialled on first use. It is safe
// for concurrent use.
type Pool struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// New returns an empty pool whose connections are dialled with opts after
// plaintext transport credentials (a credentials option in opts replaces
// them). Close it, or let Run close it, when done.
func New(opts ...grpc.DialOption) *Pool {
	all := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	return &Pool{opts: all, conns: map[string]*grpc.ClientConn{}}
}

// Conn returns the connection to addr, dialling it on first use. It fails
// once the pool is closed.
func (p *Pool) Conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("dial %s: connection pool closed", addr)
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	p.conns[addr] = c
	return c, nil
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

// Len returns the number of open connections.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close closes every connection; later Conn calls fail. It is idempotent.
func (p *Pool) Close() {
	p.Retain(nil)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// Membership is the ring as Run watches it; ring.Ring implements it. Its
// methods are safe for concurrent use.
type Membership interface {
	// Members returns the live members.
	Members() []ring.Member
	// Changed returns a channel closed at the next placement change.
	Changed() <-chan struct{}
}

var _ Membership = (*ring.Ring)(nil)

// Run keeps the connections to live members (any state) and closes the
// others, at start, at every placement change and every RetainInterval,
// until ctx ends; then it closes the pool. It returns nil.
func (p *Pool) Run(ctx context.Context, m Membership) error {
	defer p.Close()
	t := time.NewTicker(RetainInterval)
	defer t.Stop()
	for {
		// Take the channel before reading the members, so no change
		// between the two goes unnoticed.
		changed := m.Changed()
		p.RetainMembers(m.Members())
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

// RetainMembers keeps the connections to members' gRPC addresses and
// closes the others.
func (p *Pool) RetainMembers(members []ring.Member) {
	keep := make(map[string]bool, len(members))
	for _, mb := range members {
		if mb.GRPCAddress != "" {
			keep[mb.GRPCAddress] = true
		}
	}
	p.Retain(keep)
}
