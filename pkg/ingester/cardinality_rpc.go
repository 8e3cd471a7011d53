package ingester

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/cardinality/cardinalitypb"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/usage/accesspb"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// CardinalityState is what the cluster RPCs need of the ingester's
// cardinality.Tracker: its analytics rows (cardinality.Source) and its
// state for peer sync and handoff. Implementations must be safe for
// concurrent use.
type CardinalityState interface {
	cardinality.Source
	// TenantSketches returns the admitted-series sketch of every tenant.
	TenantSketches(now time.Time) (map[string][]byte, error)
	// TrackedMetrics lists every tracked (tenant, metric).
	TrackedMetrics() []cardinality.MetricKey
	// ExportMetric encodes one metric's state; cardinality.ErrNotTracked
	// when there is none.
	ExportMetric(tenant, metric string, now time.Time) ([]byte, error)
	// ForgetMetric drops one metric's state.
	ForgetMetric(tenant, metric string)
}

var _ CardinalityState = (*cardinality.Tracker)(nil)

// AnalyticsDeps is what Analytics serves from. State and Access are
// required.
type AnalyticsDeps struct {
	// Node is this ingester's ring name, reported to peers.
	Node string
	// State is the cardinality state (a cardinality.Tracker).
	State CardinalityState
	// Access is the query statistics of the metrics this ingester owns (a
	// usage.AccessStats).
	Access AccessState
	// Status is this node's health summary (GetNodeStatus); nil answers
	// Unimplemented.
	Status NodeStatusSource
	// Aggregation is the aggregation state that ExportMetric hands to a
	// metric's new owner; nil: none (no aggregation rules).
	Aggregation AggregationState
	// Preview answers PreviewConfig (a preview.Ingester over the
	// reservoir); nil answers Unimplemented.
	Preview PreviewSource
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// NodeStatusSource reads this node's health summary. Safe for concurrent
// use.
type NodeStatusSource interface {
	NodeStatus() (*ingesterv1.NodeStatus, error)
}

// noStatus is the NodeStatusSource of an ingester wired without one.
type noStatus struct{}

func (noStatus) NodeStatus() (*ingesterv1.NodeStatus, error) {
	return nil, status.Error(codes.Unimplemented, "this ingester reports no node status")
}

// Analytics implements the ingester's cluster service: QueryMetrics,
// QueryTenants and GetAccess (the analytics a distributor merges),
// RecordAccess (query statistics a distributor hands over), TenantSketches
// (peer sync), ListMetrics and ExportMetric (ring-change handoff). It is
// safe for concurrent use.
type Analytics struct {
	ingesterv1.UnimplementedClusterServiceServer

	node    string
	state   CardinalityState
	access  AccessState
	status  NodeStatusSource
	agg     AggregationState
	preview PreviewSource
	now     func() time.Time
}

var _ ingesterv1.ClusterServiceServer = (*Analytics)(nil)

// NewAnalytics serves d's cluster RPCs; it panics when a required
// dependency is missing (a wiring bug).
func NewAnalytics(d AnalyticsDeps) *Analytics {
	if d.State == nil || d.Access == nil {
		panic("ingester.NewAnalytics: State and Access are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Status == nil {
		d.Status = noStatus{}
	}
	if d.Aggregation == nil {
		d.Aggregation = noAggregation{}
	}
	if d.Preview == nil {
		d.Preview = noPreview{}
	}
	return &Analytics{node: d.Node, state: d.State, access: d.Access, status: d.Status, agg: d.Aggregation, preview: d.Preview, now: d.Now}
}

// QueryMetrics answers this ingester's rows of metrics, or of one metric
// when req names it (none when it is not tracked).
func (a *Analytics) QueryMetrics(ctx context.Context, req *ingesterv1.QueryMetricsRequest) (*ingesterv1.QueryMetricsResponse, error) {
	q, err := cardinalitypb.FromQuery(req.GetQuery())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "query metrics: %v", err)
	}
	var rows []cardinality.MetricCardinality
	if name := req.GetName(); name != "" {
		rows, err = a.state.Metric(ctx, name, q)
	} else {
		rows, err = a.state.Metrics(ctx, q)
	}
	if err != nil {
		return nil, queryError("query metrics", err)
	}
	return &ingesterv1.QueryMetricsResponse{Metrics: cardinalitypb.Metrics(rows)}, nil
}

// QueryTenants answers this ingester's rows of tenants.
func (a *Analytics) QueryTenants(ctx context.Context, req *ingesterv1.QueryTenantsRequest) (*ingesterv1.QueryTenantsResponse, error) {
	q, err := cardinalitypb.FromQuery(req.GetQuery())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "query tenants: %v", err)
	}
	rows, err := a.state.Tenants(ctx, q)
	if err != nil {
		return nil, queryError("query tenants", err)
	}
	return &ingesterv1.QueryTenantsResponse{Tenants: cardinalitypb.Tenants(rows)}, nil
}

// queryError maps a failed query to its status: the caller's deadline or
// cancellation as such, anything else Internal.
func queryError(what string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", what, err)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: %v", what, err)
	default:
		return status.Errorf(codes.Internal, "%s: %v", what, err)
	}
}

// QueryAggregation answers this ingester's aggregation rows (none without
// aggregation rules).
func (a *Analytics) QueryAggregation(_ context.Context, req *ingesterv1.QueryAggregationRequest) (*ingesterv1.QueryAggregationResponse, error) {
	return &ingesterv1.QueryAggregationResponse{Rows: aggregate.StatsToProto(a.agg.StatsOf(req.GetTenant()))}, nil
}

// TenantSketches answers this ingester's admitted-series sketch of every
// tenant it tracks.
func (a *Analytics) TenantSketches(_ context.Context, _ *ingesterv1.TenantSketchesRequest) (*ingesterv1.TenantSketchesResponse, error) {
	sks, err := a.state.TenantSketches(a.now())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "tenant sketches: %v", err)
	}
	resp := &ingesterv1.TenantSketchesResponse{Node: a.node, Sketches: make([]*ingesterv1.TenantSketch, 0, len(sks))}
	for tenant, b := range sks {
		resp.Sketches = append(resp.Sketches, &ingesterv1.TenantSketch{Tenant: tenant, Sketch: b})
	}
	slices.SortFunc(resp.Sketches, func(x, y *ingesterv1.TenantSketch) int { return strings.Compare(x.Tenant, y.Tenant) })
	return resp, nil
}

// ListMetrics answers the tracked metrics whose placement key falls in the
// requested partitions.
func (a *Analytics) ListMetrics(_ context.Context, req *ingesterv1.ListMetricsRequest) (*ingesterv1.ListMetricsResponse, error) {
	n := uint64(req.GetPartitionCount())
	if n == 0 {
		return nil, status.Error(codes.InvalidArgument, "list metrics: partition_count must be positive")
	}
	want := make(map[uint64]bool, len(req.GetPartitions()))
	for _, p := range req.GetPartitions() {
		want[uint64(p)] = true
	}
	resp := &ingesterv1.ListMetricsResponse{}
	var buf []byte
	for _, k := range a.state.TrackedMetrics() {
		buf = ring.Key(buf[:0], k.Tenant, k.Metric)
		// The same computation as ring.Placement.Partition.
		if want[xxhash.Sum64(buf)%n] {
			resp.Metrics = append(resp.Metrics, &ingesterv1.MetricKey{Tenant: k.Tenant, Metric: k.Metric})
		}
	}
	return resp, nil
}

// ExportMetric answers one metric's state and query statistics and, when
// asked, forgets them so that its new owner alone counts them from now on.
// An observation that lands between the export and the forget is lost from
// this ingester's state; the new owner's next pull picks up anything
// arriving later. A metric with statistics but no cardinality state is
// found with an empty state.
func (a *Analytics) ExportMetric(_ context.Context, req *ingesterv1.ExportMetricRequest) (*ingesterv1.ExportMetricResponse, error) {
	resp := &ingesterv1.ExportMetricResponse{}
	b, err := a.state.ExportMetric(req.GetTenant(), req.GetMetric(), a.now())
	switch {
	case errors.Is(err, cardinality.ErrNotTracked):
	case err != nil:
		return nil, status.Errorf(codes.Internal, "export metric: %v", err)
	default:
		resp.Found, resp.State = true, b
		if req.GetForget() {
			a.state.ForgetMetric(req.GetTenant(), req.GetMetric())
		}
	}
	if acc, ok := a.access.Metric(req.GetTenant(), req.GetMetric(), req.GetForget()); ok {
		resp.Found, resp.Access = true, &ingesterv1.MetricAccess{Metric: req.GetMetric(), Stats: accesspb.Stats(acc)}
	}
	agg, err := a.agg.ExportMetric(req.GetTenant(), req.GetMetric(), req.GetForget())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "export aggregation state: %v", err)
	}
	if agg != nil {
		resp.Found, resp.Aggregation = true, agg
	}
	return resp, nil
}

// GetNodeStatus answers this ingester's health summary.
func (a *Analytics) GetNodeStatus(context.Context, *ingesterv1.GetNodeStatusRequest) (*ingesterv1.GetNodeStatusResponse, error) {
	st, err := a.status.NodeStatus()
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.Internal, "node status: %v", err)
	}
	return &ingesterv1.GetNodeStatusResponse{Status: st}, nil
}
