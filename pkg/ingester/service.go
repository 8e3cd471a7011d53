// Package ingester implements the governor node's gRPC Push API: it decodes
// the batches distributors send, hands them to the node's pipeline (the
// forwarder today, the WAL once it exists) and answers with what it accepted.
//
// Durability: until the WAL exists an accepted batch is held in memory by the
// forwarder, and it is lost if the process dies before the backend has it.
package ingester

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/forward"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Appender takes ownership of accepted batches. Implementations must be safe
// for concurrent use. Append returns only once the batch is as durable as
// the implementation promises; an error wrapping forward.ErrBackpressure
// means "try again later", any other error means the batch was not taken.
type Appender interface {
	Append(ctx context.Context, b forward.Batch) error
}

var _ Appender = (*forward.Forwarder)(nil)

// Service implements ingesterv1.IngesterServiceServer.
type Service struct {
	ingesterv1.UnimplementedIngesterServiceServer

	app      Appender
	logger   *slog.Logger
	accepted atomic.Bool

	requests *prometheus.CounterVec
	received *prometheus.CounterVec
}

var _ ingesterv1.IngesterServiceServer = (*Service)(nil)

// NewService builds the Push service. It refuses pushes until Accept(true).
func NewService(app Appender, logger *slog.Logger, reg prometheus.Registerer) *Service {
	f := promauto.With(reg)
	return &Service{
		app:    app,
		logger: logger,
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_ingester_push_requests_total",
			Help: "Push requests by gRPC status code.",
		}, []string{"code"}),
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_ingester_received_total",
			Help: "Samples, histograms and exemplars accepted from distributors.",
		}, []string{"kind"}),
	}
}

// Accept switches whether Push takes new batches. The ingester turns it off
// when it starts leaving the ring, so in-flight senders get UNAVAILABLE and
// retry against the new owner.
func (s *Service) Accept(on bool) { s.accepted.Store(on) }

// Push implements ingesterv1.IngesterServiceServer.
func (s *Service) Push(ctx context.Context, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	resp, err := s.push(ctx, req)
	s.requests.WithLabelValues(status.Code(err).String()).Inc()
	return resp, err
}

func (s *Service) push(ctx context.Context, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	if !s.accepted.Load() {
		return nil, status.Error(codes.Unavailable, "ingester is not accepting pushes (joining or leaving the ring)")
	}
	b := forward.Batch{Tenant: req.GetTenant()}
	if err := b.Request.Unmarshal(req.GetRequest()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode remote write 2.0 payload: %v", err)
	}
	b.Metadata = metadataFromProto(req.GetMetadata())

	samples, histograms, exemplars := counts(&b.Request)
	if err := s.app.Append(ctx, b); err != nil {
		if errors.Is(err, forward.ErrBackpressure) {
			return nil, status.Errorf(codes.ResourceExhausted, "ingester applies backpressure: %v", err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, status.Errorf(codes.Unavailable, "append batch: %v", err)
	}
	s.received.WithLabelValues("samples").Add(float64(samples))
	s.received.WithLabelValues("histograms").Add(float64(histograms))
	s.received.WithLabelValues("exemplars").Add(float64(exemplars))
	return &ingesterv1.PushResponse{
		SamplesWritten:    int64(samples),
		HistogramsWritten: int64(histograms),
		ExemplarsWritten:  int64(exemplars),
	}, nil
}

func counts(r *writev2.Request) (samples, histograms, exemplars int) {
	for i := range r.Timeseries {
		ts := &r.Timeseries[i]
		samples += len(ts.Samples)
		histograms += len(ts.Histograms)
		exemplars += len(ts.Exemplars)
	}
	return samples, histograms, exemplars
}

// MetadataToProto converts Remote Write 1.0 family metadata for the wire.
func MetadataToProto(in []prompb.MetricMetadata) []*ingesterv1.MetricMetadata {
	if len(in) == 0 {
		return nil
	}
	out := make([]*ingesterv1.MetricMetadata, len(in))
	for i, m := range in {
		out[i] = &ingesterv1.MetricMetadata{
			Type:             int32(m.Type),
			MetricFamilyName: m.MetricFamilyName,
			Help:             m.Help,
			Unit:             m.Unit,
		}
	}
	return out
}

func metadataFromProto(in []*ingesterv1.MetricMetadata) []prompb.MetricMetadata {
	if len(in) == 0 {
		return nil
	}
	out := make([]prompb.MetricMetadata, len(in))
	for i, m := range in {
		out[i] = prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_MetricType(m.GetType()),
			MetricFamilyName: m.GetMetricFamilyName(),
			Help:             m.GetHelp(),
			Unit:             m.GetUnit(),
		}
	}
	return out
}
