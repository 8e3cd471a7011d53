package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"

	"github.com/promgov/promgov/internal/fanout"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/accesspb"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// AccessOutbox is where a distributor's query tap and query logs record
// (usage.AccessStats). Both methods are safe for concurrent use.
type AccessOutbox interface {
	// Drain takes every tenant's statistics recorded so far.
	Drain() map[string]usage.AccessSnapshot
	// MergeTenant puts statistics back (a batch that could not be sent).
	MergeTenant(tenant string, s usage.AccessSnapshot) (dropped int)
}

var _ AccessOutbox = (*usage.AccessStats)(nil)

// PlacementSource returns the current placement. ring.Ring implements it;
// it is safe for concurrent use.
type PlacementSource interface {
	Placement() *ring.Placement
}

// AccessShipper sends what a distributor's query tap recorded to the
// ingesters that own each metric, so a metric's query statistics live
// where its cardinality does (key: tenant + metric name; a name pattern's
// key is tenant + usage.PatternKey). Every interval it drains the outbox and
// sends one RecordAccess per (ingester, tenant). A batch that fails goes
// back into the outbox for the next round (bounded by the outbox): an
// ingester that applied a batch whose answer was lost counts it twice,
// which over-counts use and so never makes a metric look unused.
type AccessShipper struct {
	interval time.Duration
	timeout  time.Duration
	ring     PlacementSource
	clients  Clients
	outbox   AccessOutbox
	logger   *slog.Logger

	sent, failed, refused prometheus.Counter
}

// NewAccessShipper builds the shipper; Run drives it. timeout bounds each
// RecordAccess call. It panics when a required dependency is missing (a
// wiring bug).
func NewAccessShipper(interval, timeout time.Duration, d AccessShipperDeps) *AccessShipper {
	if d.Ring == nil || d.Clients == nil || d.Outbox == nil {
		panic("cluster.NewAccessShipper: Ring, Clients and Outbox are required")
	}
	r, clients, outbox, logger := d.Ring, d.Clients, d.Outbox, d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := promauto.With(d.Registerer)
	return &AccessShipper{
		interval: interval, timeout: timeout, ring: r, clients: clients, outbox: outbox, logger: logger,
		sent: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_usage_access_shipped_entries_total",
			Help: "Query statistics entries (metrics and name patterns) sent to their owning ingesters.",
		}),
		failed: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_usage_access_ship_failures_total",
			Help: "RecordAccess calls that failed; their entries are retried next round.",
		}),
		refused: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_usage_access_refused_entries_total",
			Help: "Query statistics entries an ingester did not keep because its bound was reached.",
		}),
	}
}

// Run ships every interval until ctx ends, then once more so that a
// stopping distributor hands over what it recorded last. It returns nil.
func (s *AccessShipper) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
			defer cancel()
			_ = s.ShipOnce(final)
			return nil
		case <-t.C:
			_ = s.ShipOnce(ctx)
		}
	}
}

// AccessShipperDeps is what an AccessShipper works with. Ring, Clients and
// Outbox are required; Logger and Registerer may be nil.
type AccessShipperDeps struct {
	Ring       PlacementSource
	Clients    Clients
	Outbox     AccessOutbox
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// shipment is one RecordAccess call: one tenant's entries for one ingester.
type shipment struct {
	addr string
	req  *ingesterv1.RecordAccessRequest
	snap usage.AccessSnapshot // the same entries, to put back on failure
}

// ShipOnce drains the outbox and sends every entry to its owner. Entries
// without an owner (no ACTIVE ingester) or whose call failed go back to
// the outbox; the error says what failed.
func (s *AccessShipper) ShipOnce(ctx context.Context) error {
	drained := s.outbox.Drain()
	if len(drained) == 0 {
		return nil
	}
	p := s.ring.Placement()
	if p == nil || p.NumIngesters() == 0 {
		for t, snap := range drained {
			s.outbox.MergeTenant(t, snap)
		}
		s.logger.Warn("usage: query statistics kept for the next round: the ring has no ACTIVE ingester")
		return errors.New("ship query statistics: the ring has no ACTIVE ingester")
	}
	var ships []*shipment
	var buf []byte
	for tenant, snap := range drained {
		byAddr := map[string]*shipment{}
		get := func(key string) *shipment {
			buf = ring.Key(buf[:0], tenant, key)
			owner, _ := p.Owner(buf)
			sh := byAddr[owner.GRPCAddress]
			if sh == nil {
				sh = &shipment{addr: owner.GRPCAddress, req: &ingesterv1.RecordAccessRequest{Tenant: tenant},
					snap: usage.AccessSnapshot{Metrics: map[string]*usage.Access{}}}
				byAddr[owner.GRPCAddress] = sh
				ships = append(ships, sh)
			}
			return sh
		}
		for name, a := range snap.Metrics {
			sh := get(name)
			accesspb.AddMetric(sh.req, name, a)
			sh.snap.Metrics[name] = a
		}
		for _, pa := range snap.Patterns {
			sh := get(usage.PatternKey(pa.Pattern.Regex, pa.Pattern.Negative))
			accesspb.AddPattern(sh.req, pa)
			sh.snap.Patterns = append(sh.snap.Patterns, pa)
		}
	}
	errs := fanout.Each(ships, func(_ int, sh *shipment) error {
		if err := s.send(ctx, sh); err != nil {
			s.failed.Inc()
			s.outbox.MergeTenant(sh.req.GetTenant(), sh.snap)
			return fmt.Errorf("ingester %s: %w", sh.addr, err)
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		s.logger.Warn("usage: query statistics not delivered; retrying next round", "failed", len(errs), "err", err)
		return err
	}
	return nil
}

func (s *AccessShipper) send(ctx context.Context, sh *shipment) error {
	if sh.addr == "" {
		return errors.New("owner has no gRPC address")
	}
	c, err := s.clients.Client(sh.addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := c.RecordAccess(ctx, sh.req)
	if err != nil {
		return err
	}
	s.sent.Add(float64(len(sh.req.GetMetrics()) + len(sh.req.GetPatterns())))
	s.refused.Add(float64(resp.GetDropped()))
	return nil
}

// Access reads every ingester's query statistics (GetAccess) and merges
// them. Unlike the cardinality answers it fails when any ingester does not
// answer: the statistics would be incomplete, and a metric whose owner is
// missing could look unused. The merged answer of those that did answer is
// returned with the error.
func (f *FanOut) Access(ctx context.Context) (usage.AccessSnapshot, error) {
	ingesters := peers(f.members, false)
	if len(ingesters) == 0 {
		return usage.AccessSnapshot{}, ErrNoActiveIngester
	}
	snaps := make([]usage.AccessSnapshot, len(ingesters))
	errs := fanout.Each(ingesters, func(i int, in ring.Member) error {
		return f.call(ctx, in, func(ctx context.Context, c ingesterv1.ClusterServiceClient) error {
			resp, err := c.GetAccess(ctx, &ingesterv1.GetAccessRequest{}, grpc.MaxCallRecvMsgSize(MaxRecvMsgSize))
			if err != nil {
				return err
			}
			snaps[i], err = accesspb.FromResponse(resp)
			return err
		})
	})
	f.m.calls.WithLabelValues(resultSuccess).Add(float64(len(ingesters) - len(errs)))
	f.m.calls.WithLabelValues(resultFailure).Add(float64(len(errs)))
	return usage.MergeSnapshots(snaps...), errors.Join(errs...)
}
