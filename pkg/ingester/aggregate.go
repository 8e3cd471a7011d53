package ingester

import (
	"context"
	"errors"
	"fmt"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/forward"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Aggregator runs the aggregation rules over admitted series before the WAL
// append (docs/aggregation.md). aggregate.Engine implements it; every
// method is safe for concurrent use.
type Aggregator interface {
	// RememberType records a Remote Write 1.0 family type.
	RememberType(tenant, family string, typ int32)
	// Process returns the batch to write and what it took out of it.
	Process(tenant string, batch []byte, names []string) ([]byte, aggregate.Taken)
}

var _ Aggregator = (*aggregate.Engine)(nil)

// NoAggregation is the Aggregator of an ingester without aggregation
// rules: it takes nothing.
type NoAggregation struct{}

// RememberType implements Aggregator.
func (NoAggregation) RememberType(string, string, int32) {}

// Process implements Aggregator: the whole batch is written.
func (NoAggregation) Process(_ string, batch []byte, _ []string) ([]byte, aggregate.Taken) {
	return batch, aggregate.Taken{}
}

// aggregateBatch runs the aggregator over an admitted batch; names are
// those of countBatch.
func (s *Service) aggregateBatch(req *ingesterv1.PushRequest, batch []byte, names []string) ([]byte, aggregate.Taken) {
	for _, m := range req.GetMetadata() {
		s.agg.RememberType(req.GetTenant(), m.GetMetricFamilyName(), m.GetType())
	}
	return s.agg.Process(req.GetTenant(), batch, names)
}

// WALOutputs appends aggregation outputs to the WAL as batch records, like
// pushed series (aggregate.Log).
type WALOutputs struct{ Log Log }

var _ aggregate.Log = WALOutputs{}

// AppendBatch implements aggregate.Log.
func (w WALOutputs) AppendBatch(ctx context.Context, tenant string, batch []byte) error {
	payload, err := forward.AppendRecord(nil, &ingesterv1.PushRequest{Tenant: tenant, Series: batch})
	if err != nil {
		return err
	}
	if _, err := w.Log.Append(ctx, wal.RecordBatch, payload); err != nil {
		if errors.Is(err, wal.ErrFull) {
			return fmt.Errorf("wal full: %w", err)
		}
		return err
	}
	return nil
}

// withTaken counts the samples and histograms aggregation took as written
// (the exemplars of aggregated series are not written).
func withTaken(t aggregate.Taken, r *ingesterv1.PushResponse) *ingesterv1.PushResponse {
	r.SamplesWritten += int64(t.Samples)
	r.HistogramsWritten += int64(t.Histograms)
	return r
}

// AggregationState is what the handoff RPC needs of the aggregator.
// aggregate.Engine implements it; safe for concurrent use.
type AggregationState interface {
	// ExportMetric encodes a metric's aggregation state (nil: none),
	// forgetting it here when forget is set.
	ExportMetric(tenant, metric string, forget bool) ([]byte, error)
	// StatsOf answers the aggregation rows of one tenant (empty: every
	// tenant): QueryAggregation.
	StatsOf(tenant string) []aggregate.MetricStats
}

var _ AggregationState = (*aggregate.Engine)(nil)

// noAggregation is the AggregationState of an ingester without
// aggregation rules: no metric has any.
type noAggregation struct{}

func (noAggregation) ExportMetric(string, string, bool) ([]byte, error) { return nil, nil }

func (noAggregation) StatsOf(string) []aggregate.MetricStats { return nil }

// Placements is the ring as aggregation ownership sees it; ring.Ring
// implements it (safe for concurrent use).
type Placements interface {
	Placement() *ring.Placement
	Self() ring.Member
}

// RingOwns reports whether this ingester owns a (tenant, metric) in the
// current placement: only the owner writes a metric's aggregation outputs.
func RingOwns(r Placements) aggregate.Owns {
	return func(tenant, metric string) bool {
		var buf [128]byte
		m, ok := r.Placement().Owner(ring.Key(buf[:0], tenant, metric))
		return ok && m.Name == r.Self().Name
	}
}

// OverflowAggregator folds refused series into __overflow__ series.
// aggregate.Engine implements it; safe for concurrent use.
type OverflowAggregator interface {
	Overflow(tenant string, batch []byte, labelsOf func(tenant, metric string) ([]string, bool)) (aggregate.Taken, []byte)
}

// OverflowPolicy says whether a metric's per-metric limit overflows and
// which labels. cardinality.Tracker implements it; safe for concurrent
// use.
type OverflowPolicy interface {
	OverflowLabels(tenant, metric string) ([]string, bool)
}

var (
	_ OverflowAggregator = (*aggregate.Engine)(nil)
	_ OverflowPolicy     = (*cardinality.Tracker)(nil)
)

// NoOverflow is the OverflowAggregator and OverflowPolicy of an ingester
// whose limits do not overflow: it takes nothing, so the series a limit
// refused stay refused.
type NoOverflow struct{}

// Overflow implements OverflowAggregator.
func (NoOverflow) Overflow(string, []byte, func(tenant, metric string) ([]string, bool)) (aggregate.Taken, []byte) {
	return aggregate.Taken{}, nil
}

// OverflowLabels implements OverflowPolicy: no metric overflows.
func (NoOverflow) OverflowLabels(string, string) ([]string, bool) { return nil, false }

// overflowRefused hands the series a per-metric limit refused to the
// overflow aggregation; those it takes are no longer refused.
func (s *Service) overflowRefused(tenant string, g *governed) aggregate.Taken {
	took, _ := s.overflow.Overflow(tenant, g.perMetric, s.policy.OverflowLabels)
	g.refused -= took.Series
	if g.refused == 0 {
		g.message = ""
	}
	g.perMetric = nil
	return took
}
