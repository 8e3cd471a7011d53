package ingester

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/accesspb"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// AccessState is what the cluster RPCs need of the ingester's query
// statistics (usage.AccessStats): the metrics it owns, as they are queried
// through any distributor. Implementations must be safe for concurrent use.
type AccessState interface {
	// MergeTenant adds a batch of tenant's statistics; it returns how many
	// entries a bound refused.
	MergeTenant(tenant string, s usage.AccessSnapshot) (dropped int)
	// Metric returns one metric's statistics, forgetting them when asked.
	Metric(tenant, metric string, forget bool) (*usage.Access, bool)
}

var _ AccessState = (*usage.AccessStats)(nil)

// SetAccess makes a serve RecordAccess into s and hand a metric's
// statistics over with its cardinality state. Call it before serving.
func (a *Analytics) SetAccess(s AccessState) { a.access = s }

// RecordAccess merges a distributor's batch of query statistics.
func (a *Analytics) RecordAccess(_ context.Context, req *ingesterv1.RecordAccessRequest) (*ingesterv1.RecordAccessResponse, error) {
	if a.access == nil {
		return nil, status.Error(codes.Unimplemented, "this ingester keeps no query statistics")
	}
	snap, err := accesspb.FromRequest(req)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "record access: %v", err)
	}
	dropped := a.access.MergeTenant(req.GetTenant(), snap)
	return &ingesterv1.RecordAccessResponse{Dropped: int64(dropped)}, nil
}

// RecordAccess implements ingesterv1.IngesterServiceServer (see
// Analytics.RecordAccess).
func (s *Service) RecordAccess(ctx context.Context, req *ingesterv1.RecordAccessRequest) (*ingesterv1.RecordAccessResponse, error) {
	if s.analytics == nil {
		return nil, status.Error(codes.Unimplemented, "this ingester keeps no query statistics")
	}
	return s.analytics.RecordAccess(ctx, req)
}
