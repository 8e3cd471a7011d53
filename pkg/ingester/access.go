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
	// Snapshot returns the statistics merged over tenants.
	Snapshot() usage.AccessSnapshot
	// TenantSnapshots returns every tenant's statistics.
	TenantSnapshots() map[string]usage.AccessSnapshot
}

var _ AccessState = (*usage.AccessStats)(nil)

// RecordAccess merges a distributor's batch of query statistics.
func (a *Analytics) RecordAccess(_ context.Context, req *ingesterv1.RecordAccessRequest) (*ingesterv1.RecordAccessResponse, error) {
	snap, err := accesspb.FromRequest(req)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "record access: %v", err)
	}
	dropped := a.access.MergeTenant(req.GetTenant(), snap)
	return &ingesterv1.RecordAccessResponse{Dropped: int64(dropped)}, nil
}

// GetAccess answers the query statistics of the metrics this ingester
// owns: one tenant's when the request names it, else merged over tenants.
func (a *Analytics) GetAccess(_ context.Context, req *ingesterv1.GetAccessRequest) (*ingesterv1.GetAccessResponse, error) {
	if t := req.GetTenant(); t != "" {
		return accesspb.Response(a.access.TenantSnapshots()[t]), nil
	}
	return accesspb.Response(a.access.Snapshot()), nil
}
