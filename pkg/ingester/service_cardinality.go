package ingester

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// SetCardinality makes Push govern every batch with obs before the WAL
// append and serves the cluster RPCs (Query, TenantSketches, ListMetrics,
// ExportMetric) from a. Either may be nil. Call it before serving.
func (s *Service) SetCardinality(obs Observer, a *Analytics) {
	s.cardinality, s.analytics = obs, a
}

// response adds g's refusals to r.
func (g governed) response(r *ingesterv1.PushResponse) *ingesterv1.PushResponse {
	r.RefusedSeries = int64(g.refused)
	r.RefusedMessage = g.message
	return r
}

// Query implements ingesterv1.IngesterServiceServer (see Analytics.Query).
func (s *Service) Query(ctx context.Context, req *ingesterv1.QueryRequest) (*ingesterv1.QueryResponse, error) {
	if s.analytics == nil {
		return nil, status.Error(codes.Unimplemented, "this ingester serves no analytics")
	}
	return s.analytics.Query(ctx, req)
}

// TenantSketches implements ingesterv1.IngesterServiceServer (see
// Analytics.TenantSketches).
func (s *Service) TenantSketches(ctx context.Context, req *ingesterv1.TenantSketchesRequest) (*ingesterv1.TenantSketchesResponse, error) {
	if s.analytics == nil {
		return nil, status.Error(codes.Unimplemented, "this ingester tracks no cardinality")
	}
	return s.analytics.TenantSketches(ctx, req)
}

// ListMetrics implements ingesterv1.IngesterServiceServer (see
// Analytics.ListMetrics).
func (s *Service) ListMetrics(ctx context.Context, req *ingesterv1.ListMetricsRequest) (*ingesterv1.ListMetricsResponse, error) {
	if s.analytics == nil {
		return nil, status.Error(codes.Unimplemented, "this ingester tracks no cardinality")
	}
	return s.analytics.ListMetrics(ctx, req)
}

// ExportMetric implements ingesterv1.IngesterServiceServer (see
// Analytics.ExportMetric).
func (s *Service) ExportMetric(ctx context.Context, req *ingesterv1.ExportMetricRequest) (*ingesterv1.ExportMetricResponse, error) {
	if s.analytics == nil {
		return nil, status.Error(codes.Unimplemented, "this ingester tracks no cardinality")
	}
	return s.analytics.ExportMetric(ctx, req)
}
