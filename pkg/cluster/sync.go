package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/internal/fanout"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// PeerSketches receives peers' tenant sketches. cardinality.Tracker
// implements it; both methods are safe for concurrent use.
type PeerSketches interface {
	// MergePeerSketch records peer's sketch of tenant, replacing the last.
	MergePeerSketch(peer, tenant string, data []byte, now time.Time) error
	// ForgetPeer drops every sketch received from peer.
	ForgetPeer(peer string)
}

var _ PeerSketches = (*cardinality.Tracker)(nil)

// SketchSync pulls every peer ingester's tenant sketches every
// SyncInterval and hands them to the local tracker, so each ingester
// enforces max_series_per_tenant against the cluster-wide total. Peers that
// left the membership are forgotten at once; a peer that stops answering
// ages out after the tracker's peer_sketch_ttl.
type SketchSync struct {
	cfg     Config
	members Membership
	clients Clients
	store   PeerSketches
	logger  *slog.Logger
	m       *syncMetrics
	now     func() time.Time

	known map[string]bool // peers sketches were merged from; Run's goroutine only
}

// NewSketchSync builds the sync loop; Run drives it. reg and logger may be
// nil.
func NewSketchSync(cfg Config, d SketchSyncDeps) *SketchSync {
	if d.Members == nil || d.Clients == nil || d.Store == nil {
		panic("cluster.NewSketchSync: Members, Clients and Store are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &SketchSync{
		cfg: cfg, members: d.Members, clients: d.Clients, store: d.Store, logger: d.Logger,
		m: newSyncMetrics(d.Registerer), now: time.Now, known: map[string]bool{},
	}
}

// SketchSyncDeps is what a SketchSync works with. Members, Clients and
// Store are required; Logger and Registerer may be nil.
type SketchSyncDeps struct {
	Members Membership
	Clients Clients
	// Store receives the peers' sketches (a cardinality.Tracker).
	Store      PeerSketches
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Run syncs every SyncInterval until ctx ends; it returns nil then.
func (s *SketchSync) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.SyncOnce(ctx)
	}
}

// SyncOnce pulls every peer's sketches once, concurrently, and forgets
// peers that left. Failures are logged once per round, not per peer.
func (s *SketchSync) SyncOnce(ctx context.Context) {
	ps := peers(s.members, false)
	self := s.members.Self().Name
	errs := fanout.Each(ps, func(_ int, p ring.Member) error {
		if err := s.pull(ctx, self, p.Name, p.GRPCAddress); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		return nil
	})
	ok := len(ps) - len(errs)
	fails := make([]string, len(errs))
	for i, err := range errs {
		fails[i] = err.Error()
	}
	s.m.pulls.WithLabelValues(resultSuccess).Add(float64(ok))
	s.m.pulls.WithLabelValues(resultFailure).Add(float64(len(fails)))
	s.m.peers.Set(float64(ok))
	if len(fails) > 0 {
		s.logger.Warn("pulling tenant sketches from peers failed; their last sketches count until peer_sketch_ttl",
			"failed", len(fails), "peers", len(ps), "first", fails[0])
	}
	current := make(map[string]bool, len(ps))
	for _, p := range ps {
		current[p.Name] = true
	}
	for name := range s.known {
		if !current[name] {
			s.store.ForgetPeer(name)
			delete(s.known, name)
			s.logger.Info("peer left; its tenant sketches no longer count", "peer", name)
		}
	}
	for name := range current {
		s.known[name] = true
	}
}

func (s *SketchSync) pull(ctx context.Context, self, peer, addr string) error {
	c, err := s.clients.Client(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SyncTimeout)
	defer cancel()
	resp, err := c.TenantSketches(ctx, &ingesterv1.TenantSketchesRequest{Node: self})
	if err != nil {
		return fmt.Errorf("tenant sketches from %s: %w", addr, err)
	}
	now := s.now()
	for _, sk := range resp.GetSketches() {
		if err := s.store.MergePeerSketch(peer, sk.GetTenant(), sk.GetSketch(), now); err != nil {
			return fmt.Errorf("merge sketch from %s: %w", addr, err)
		}
	}
	return nil
}
