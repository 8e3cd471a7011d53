package cluster

import (
	"context"

	"google.golang.org/grpc"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Preview asks every ingester for its impact preview of a candidate
// (PreviewConfig) and returns the answers of those that answered, for
// preview.Merge; it fails only when none did. It serves the distributor's
// preview.Path.
func (f *FanOut) Preview(ctx context.Context, req *ingesterv1.PreviewConfigRequest) ([]*ingesterv1.PreviewConfigResponse, error) {
	parts, err := fanOut(ctx, f, "preview", func(ctx context.Context, c ingesterv1.ClusterServiceClient) ([]*ingesterv1.PreviewConfigResponse, error) {
		resp, err := c.PreviewConfig(ctx, req, grpc.MaxCallRecvMsgSize(MaxRecvMsgSize))
		if err != nil {
			return nil, err
		}
		return []*ingesterv1.PreviewConfigResponse{resp}, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*ingesterv1.PreviewConfigResponse, 0, len(parts))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}
