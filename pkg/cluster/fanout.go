package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/promgov/promgov/internal/fanout"
	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/cardinality/cardinalitypb"
	"github.com/promgov/promgov/pkg/ring"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// ErrNoIngester is returned by FanOut when no ingester answered.
var ErrNoIngester = errors.New("no ingester answered")

// ErrNoActiveIngester is the ErrNoIngester of a ring without an ACTIVE
// ingester to ask, as while a cluster starts.
var ErrNoActiveIngester = fmt.Errorf("%w: the ring has no ACTIVE ingester", ErrNoIngester)

// FanOut is the distributor's cardinality.Source: it asks every ACTIVE or
// LEAVING ingester through the cluster service (QueryMetrics,
// QueryTenants), with sketches, and merges the
// answers (MergeMetrics, MergeTenants), so tenant totals are sketch unions,
// never sums. An ingester that fails is left out of the answer and logged;
// the answer fails only when none answered. Safe for concurrent use.
type FanOut struct {
	cfg     Config
	members Membership
	clients Clients
	logger  *slog.Logger
	m       *fanOutMetrics
}

var _ cardinality.Source = (*FanOut)(nil)

// NewFanOut builds the fan-out source; it panics when a required
// dependency is missing (a wiring bug).
func NewFanOut(cfg Config, d FanOutDeps) *FanOut {
	if d.Members == nil || d.Clients == nil {
		panic("cluster.NewFanOut: Members and Clients are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &FanOut{cfg: cfg, members: d.Members, clients: d.Clients, logger: d.Logger, m: newFanOutMetrics(d.Registerer)}
}

// FanOutDeps is what a FanOut works with. Members and Clients are
// required; Logger and Registerer may be nil.
type FanOutDeps struct {
	Members    Membership
	Clients    Clients
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Metrics implements cardinality.Source.
func (f *FanOut) Metrics(ctx context.Context, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	return f.metrics(ctx, "metrics", &ingesterv1.QueryMetricsRequest{Query: askFor(q)}, q)
}

// Metric implements cardinality.Source.
func (f *FanOut) Metric(ctx context.Context, name string, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	return f.metrics(ctx, "metric", &ingesterv1.QueryMetricsRequest{Query: askFor(q), Name: name}, q)
}

func (f *FanOut) metrics(ctx context.Context, what string, req *ingesterv1.QueryMetricsRequest, q cardinality.Query) ([]cardinality.MetricCardinality, error) {
	parts, err := fanOut(ctx, f, what, func(ctx context.Context, c ingesterv1.ClusterServiceClient) ([]cardinality.MetricCardinality, error) {
		resp, err := c.QueryMetrics(ctx, req, grpc.MaxCallRecvMsgSize(MaxRecvMsgSize))
		return cardinalitypb.FromMetrics(resp.GetMetrics()), err
	})
	if err != nil {
		return nil, err
	}
	return cardinality.MergeMetrics(parts, q)
}

// Tenants implements cardinality.Source.
func (f *FanOut) Tenants(ctx context.Context, q cardinality.Query) ([]cardinality.TenantCardinality, error) {
	parts, err := fanOut(ctx, f, "tenants", func(ctx context.Context, c ingesterv1.ClusterServiceClient) ([]cardinality.TenantCardinality, error) {
		resp, err := c.QueryTenants(ctx, &ingesterv1.QueryTenantsRequest{Query: askFor(q)}, grpc.MaxCallRecvMsgSize(MaxRecvMsgSize))
		return cardinalitypb.FromTenants(resp.GetTenants()), err
	})
	if err != nil {
		return nil, err
	}
	return cardinality.MergeTenants(parts, q)
}

// Aggregation answers the cluster's aggregation rows of one tenant (empty:
// every tenant): every ingester's QueryAggregation, merged
// (aggregate.MergeStats). It serves the distributor's
// aggregate.PathMetrics.
func (f *FanOut) Aggregation(ctx context.Context, tenant string) ([]aggregate.MetricStats, error) {
	parts, err := fanOut(ctx, f, "aggregation", func(ctx context.Context, c ingesterv1.ClusterServiceClient) ([]aggregate.MetricStats, error) {
		resp, err := c.QueryAggregation(ctx, &ingesterv1.QueryAggregationRequest{Tenant: tenant}, grpc.MaxCallRecvMsgSize(MaxRecvMsgSize))
		return aggregate.StatsFromProto(resp.GetRows()), err
	})
	if err != nil {
		return nil, err
	}
	return aggregate.MergeStats(parts), nil
}

// askFor asks an ingester for the same rows, with sketches to merge, and
// with the listing's labels when q asks for them. Since each metric has one
// owner, every ingester's top q.Limit together hold the cluster's top
// q.Limit.
func askFor(q cardinality.Query) *ingesterv1.CardinalityQuery {
	q.Sketches = true
	return cardinalitypb.Query(q)
}

// fanOut asks every ingester concurrently (ask, bounded by
// Config.QueryTimeout) and returns the answers of those that answered; it
// fails only when none did.
func fanOut[T any](ctx context.Context, f *FanOut, what string, ask func(context.Context, ingesterv1.ClusterServiceClient) ([]T, error)) ([][]T, error) {
	ingesters := peers(f.members, false)
	if len(ingesters) == 0 {
		return nil, ErrNoActiveIngester
	}
	answers := make([][]T, len(ingesters))
	answered := make([]bool, len(ingesters))
	errs := fanout.Each(ingesters, func(i int, in ring.Member) error {
		err := f.call(ctx, in, func(ctx context.Context, c ingesterv1.ClusterServiceClient) (err error) {
			answers[i], err = ask(ctx, c)
			return err
		})
		answered[i] = err == nil
		return err
	})
	var parts [][]T
	for i, ok := range answered {
		if ok {
			parts = append(parts, answers[i])
		}
	}
	f.m.calls.WithLabelValues(resultSuccess).Add(float64(len(parts)))
	f.m.calls.WithLabelValues(resultFailure).Add(float64(len(errs)))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoIngester, errors.Join(errs...))
	}
	if len(errs) > 0 {
		f.logger.Warn("cardinality API answered without some ingesters", "query", what,
			"answered", len(parts), "failed", len(errs), "err", errors.Join(errs...))
	}
	return parts, nil
}

// call runs one cluster call on ingester in, bounded by
// Config.QueryTimeout; its error names the ingester.
func (f *FanOut) call(ctx context.Context, in ring.Member, fn func(context.Context, ingesterv1.ClusterServiceClient) error) error {
	c, err := f.clients.Client(in.GRPCAddress)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, f.cfg.QueryTimeout)
		defer cancel()
		err = fn(ctx, c)
	}
	if err != nil {
		return fmt.Errorf("ingester %s (%s): %w", in.Name, in.GRPCAddress, err)
	}
	return nil
}
