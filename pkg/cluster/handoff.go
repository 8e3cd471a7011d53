package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/promgov/promgov/internal/fanout"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/accesspb"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Placements is the ring as the handoff sees it. ring.Ring implements it;
// every method is safe for concurrent use.
type Placements interface {
	Membership
	// Placement returns the current, immutable placement.
	Placement() *ring.Placement
	// Changed returns a channel closed at the next placement change.
	Changed() <-chan struct{}
	// MembersChanged returns a channel closed at the next change of the
	// member table, placement change or not.
	MembersChanged() <-chan struct{}
}

var _ Placements = (*ring.Ring)(nil)

// MetricImporter merges metric state pulled from a previous owner.
// cardinality.Tracker implements it; both methods are safe for concurrent
// use.
type MetricImporter interface {
	// ImportMetric merges state from a peer's ExportMetric.
	ImportMetric(data []byte, now time.Time) (tenant, metric string, err error)
	// BeginTransfer marks a transfer in progress until done is called.
	BeginTransfer() (done func())
}

var _ MetricImporter = (*cardinality.Tracker)(nil)

// AccessImporter merges the query statistics that move with a metric.
// usage.AccessStats implements it; it is safe for concurrent use.
type AccessImporter interface {
	MergeTenant(tenant string, s usage.AccessSnapshot) (dropped int)
}

var _ AccessImporter = (*usage.AccessStats)(nil)

// DiscardAccess is the AccessImporter of an ingester that keeps no query
// statistics: what moves with a metric is dropped.
type DiscardAccess struct{}

// MergeTenant implements AccessImporter; it keeps nothing.
func (DiscardAccess) MergeTenant(string, usage.AccessSnapshot) int { return 0 }

// HandoffDeps is what a Handoff works with. Ring, Clients and Store are
// required; Access is DiscardAccess when nil; Logger and Registerer may be
// nil.
type HandoffDeps struct {
	Ring    Placements
	Clients Clients
	// Store is the cardinality state moved metrics merge into.
	Store MetricImporter
	// Access receives the query statistics that move with each metric.
	Access AccessImporter
	// Aggregation receives the aggregation state (partial intervals,
	// counter bases and totals) that moves with each metric; nil drops it.
	Aggregation AggregationImporter
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// AggregationImporter merges the aggregation state that moves with a
// metric. aggregate.Engine implements it; it is safe for concurrent use.
type AggregationImporter interface {
	ImportMetric(data []byte) error
}

// discardAggregation is the AggregationImporter of an ingester without
// aggregation rules: state that moves with a metric is dropped.
type discardAggregation struct{}

func (discardAggregation) ImportMetric([]byte) error { return nil }

// Handoff moves cardinality state to a metric's new owner when the
// placement changes. On every change the ingester asks every other ingester
// which metrics it tracks in the partitions this ingester now owns, pulls
// each with ExportMetric (the sender forgets it, so rates are not counted
// twice) and merges it. It pulls from everyone rather than from the
// previous placement's owner, which makes it indifferent to the order in
// which this node learnt about members, and hands state back after a
// restart. The first pull runs inside BeginTransfer; a second pull after
// HandoffSettle collects what distributors still routed to the previous
// owner while the change spread.
type Handoff struct {
	cfg     Config
	ring    Placements
	clients Clients
	store   MetricImporter
	access  AccessImporter
	agg     AggregationImporter
	logger  *slog.Logger
	m       *handoffMetrics
	now     func() time.Time
}

// NewHandoff builds the handoff loop; Run drives it. It panics when a
// required dependency is missing (a wiring bug).
func NewHandoff(cfg Config, d HandoffDeps) *Handoff {
	if d.Ring == nil || d.Clients == nil || d.Store == nil {
		panic("cluster.NewHandoff: Ring, Clients and Store are required")
	}
	if d.Access == nil {
		d.Access = DiscardAccess{}
	}
	if d.Aggregation == nil {
		d.Aggregation = discardAggregation{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handoff{cfg: cfg, ring: d.Ring, clients: d.Clients, store: d.Store, access: d.Access, agg: d.Aggregation,
		logger: d.Logger, m: newHandoffMetrics(d.Registerer), now: time.Now}
}

// Run pulls moved state at every placement change until ctx ends; it
// returns nil then. It also pulls when an ingester the current placement
// does not place is seen LEAVING: one that joined, pulled metrics from
// this node (which forgot them) and began to leave before gossip told
// this node it was ACTIVE. The placement here never changed, so without
// that pull its metrics would be lost when it goes.
func (h *Handoff) Run(ctx context.Context) error {
	var last uint64
	var settle <-chan time.Time
	var timer *time.Timer
	var drained map[string]bool // unplaced LEAVING peers already pulled from
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed, members := h.ring.Changed(), h.ring.MembersChanged()
		p := h.ring.Placement()
		leaving := unplacedLeaving(h.ring, p)
		pull := false
		if fp := p.Fingerprint(); fp != last {
			last = fp
			pull = true
		}
		for name := range leaving {
			if !drained[name] {
				pull = true
			}
		}
		drained = leaving
		if pull {
			if p.Partitions(h.ring.Self().Name) > 0 {
				done := h.store.BeginTransfer()
				h.Pull(ctx, p)
				done()
				if h.cfg.HandoffSettle > 0 {
					if timer != nil {
						timer.Stop()
					}
					timer = time.NewTimer(h.cfg.HandoffSettle)
					settle = timer.C
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-members:
		case <-settle:
			settle = nil
			h.Pull(ctx, h.ring.Placement())
		}
	}
}

// unplacedLeaving returns the names of the LEAVING ingesters other than
// this node that p gives no partition. An ingester that goes LEAVING while
// p still places it (the rebuild is pending) is not one: the placement
// change that follows triggers the pull.
func unplacedLeaving(m Membership, p *ring.Placement) map[string]bool {
	var out map[string]bool
	for _, mem := range peers(m, false) {
		if mem.State == ring.StateLeaving && p.Partitions(mem.Name) == 0 {
			if out == nil {
				out = make(map[string]bool)
			}
			out[mem.Name] = true
		}
	}
	return out
}

// Pull pulls, from every other ingester, the state of the metrics it
// tracks in the partitions this ingester owns in p, and merges it. It
// returns how many metrics were imported. Failures are logged once per
// pull.
func (h *Handoff) Pull(ctx context.Context, p *ring.Placement) int {
	self := h.ring.Self().Name
	var owned []uint32
	for part := range p.PartitionCount() {
		if o, ok := p.PartitionOwner(part); ok && o.Name == self {
			owned = append(owned, uint32(part))
		}
	}
	if len(owned) == 0 {
		return 0
	}
	ps := peers(h.ring, true)
	var imported, failed atomic.Int64
	errs := fanout.Each(ps, func(_ int, peer ring.Member) error {
		n, nf, err := h.pullFrom(ctx, peer, uint32(p.PartitionCount()), owned)
		imported.Add(int64(n))
		failed.Add(int64(nf))
		if err != nil {
			return fmt.Errorf("%s: %w", peer.Name, err)
		}
		return nil
	})
	h.m.pulls.WithLabelValues(resultSuccess).Add(float64(len(ps) - len(errs)))
	h.m.pulls.WithLabelValues(resultFailure).Add(float64(len(errs)))
	n, nf := int(imported.Load()), int(failed.Load())
	h.m.metrics.WithLabelValues(resultSuccess).Add(float64(n))
	h.m.metrics.WithLabelValues(resultFailure).Add(float64(nf))
	h.m.last.Set(float64(h.now().UnixNano()) / 1e9)
	if len(errs) > 0 {
		h.logger.Warn("ring-change state pull incomplete; limits of the metrics not pulled start from the state here",
			"peers", len(ps), "failed_peers", len(errs), "imported", n, "failed_metrics", nf, "err", errors.Join(errs...))
	} else if n > 0 {
		h.logger.Info("pulled cardinality state of moved metrics", "peers", len(ps), "imported", n, "owned_partitions", len(owned))
	}
	return n
}

// pullFrom pulls the moved metrics one peer tracks. It returns the metrics
// imported, those that failed, and the first error.
func (h *Handoff) pullFrom(ctx context.Context, peer ring.Member, count uint32, owned []uint32) (imported, failed int, err error) {
	c, err := h.clients.Client(peer.GRPCAddress)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HandoffTimeout)
	defer cancel()
	list, err := c.ListMetrics(ctx, &ingesterv1.ListMetricsRequest{PartitionCount: count, Partitions: owned})
	if err != nil {
		return 0, 0, fmt.Errorf("list metrics: %w", err)
	}
	var first error
	for _, k := range list.GetMetrics() {
		resp, err := c.ExportMetric(ctx, &ingesterv1.ExportMetricRequest{Tenant: k.GetTenant(), Metric: k.GetMetric(), Forget: true})
		if err == nil && len(resp.GetState()) > 0 {
			_, _, err = h.store.ImportMetric(resp.GetState(), h.now())
		}
		if err == nil && resp.GetAccess() != nil {
			h.access.MergeTenant(k.GetTenant(), usage.AccessSnapshot{
				Metrics: map[string]*usage.Access{k.GetMetric(): accesspb.FromStats(resp.GetAccess().GetStats())},
			})
		}
		if err == nil && len(resp.GetAggregation()) > 0 {
			err = h.agg.ImportMetric(resp.GetAggregation())
		}
		if err != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("metric %q of tenant %q: %w", k.GetMetric(), k.GetTenant(), err)
			}
			if ctx.Err() != nil {
				return imported, failed, first
			}
			continue
		}
		if resp.GetFound() {
			imported++
		}
	}
	return imported, failed, first
}
