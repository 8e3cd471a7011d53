package ingester

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/reservoir"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// PreviewSource answers the impact preview of a candidate configuration
// (preview.Ingester). Safe for concurrent use.
type PreviewSource interface {
	Preview(ctx context.Context, req *ingesterv1.PreviewConfigRequest) (*ingesterv1.PreviewConfigResponse, error)
}

// noPreview is the PreviewSource of an ingester without a reservoir.
type noPreview struct{}

func (noPreview) Preview(context.Context, *ingesterv1.PreviewConfigRequest) (*ingesterv1.PreviewConfigResponse, error) {
	return nil, status.Error(codes.Unimplemented, "this ingester keeps no series reservoir (--preview.reservoir.series-per-metric=0)")
}

// PreviewConfig answers what a candidate's rules would do to the metrics
// this ingester owns.
func (a *Analytics) PreviewConfig(ctx context.Context, req *ingesterv1.PreviewConfigRequest) (*ingesterv1.PreviewConfigResponse, error) {
	return a.preview.Preview(ctx, req)
}

// Sampler takes what a push carries into the impact preview's reservoir
// (reservoir.Reservoir). Offer is safe for concurrent use, retains nothing
// of batch or names, and is cheap when it takes nothing.
type Sampler interface {
	Offer(tenant string, batch []byte, names []string, now time.Time)
}

var _ Sampler = (*reservoir.Reservoir)(nil)

// noSampler is the Sampler of an ingester without a reservoir.
type noSampler struct{}

func (noSampler) Offer(string, []byte, []string, time.Time) {}
