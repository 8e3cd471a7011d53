package ingester

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/wal"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// PushParts implements ingesterv1.IngesterServiceServer: every part is
// prepared (validated, governed, aggregated) exactly as Push would, and the
// records of those that leave something to log are appended together
// (Log.AppendAll), sharing one write and one fsync. Each part is answered
// on its own; the call fails as a whole only when the ingester takes no
// pushes at all.
func (s *Service) PushParts(ctx context.Context, req *ingesterv1.PushPartsRequest) (*ingesterv1.PushPartsResponse, error) {
	if !s.accepted.Load() {
		s.requests.WithLabelValues(codes.Unavailable.String()).Add(float64(len(req.GetParts())))
		return nil, errNotAccepting
	}
	parts := req.GetParts()
	results := make([]*ingesterv1.PushPartResult, len(parts))
	preps := make([]prepared, len(parts))
	scs := make([]*pushScratch, 0, len(parts))
	defer func() {
		for _, sc := range scs {
			s.putScratch(sc)
		}
	}()
	var payloads [][]byte
	var logged []int // the parts whose record is in payloads, in order
	for i, part := range parts {
		sc := s.scratch.Get().(*pushScratch)
		scs = append(scs, sc)
		p, err := s.prepare(part, sc)
		switch {
		case err != nil:
			results[i] = s.partFailed(err)
		case p.payload == nil:
			results[i] = s.partWritten(p.response())
		default:
			preps[i] = p
			payloads = append(payloads, p.payload)
			logged = append(logged, i)
		}
	}
	if len(payloads) > 0 {
		errs := s.log.AppendAll(ctx, wal.RecordBatch, payloads)
		for k, i := range logged {
			if errs[k] != nil {
				results[i] = s.partFailed(appendStatus(ctx, errs[k]))
				continue
			}
			results[i] = s.partWritten(s.written(&preps[i]))
		}
	}
	return &ingesterv1.PushPartsResponse{Results: results}, nil
}

// partWritten answers a part that was written (or had nothing to write),
// counting it like a Push.
func (s *Service) partWritten(resp *ingesterv1.PushResponse) *ingesterv1.PushPartResult {
	s.requests.WithLabelValues(codes.OK.String()).Inc()
	return &ingesterv1.PushPartResult{Response: resp}
}

// partFailed answers a part with the status Push would have failed with.
func (s *Service) partFailed(err error) *ingesterv1.PushPartResult {
	st := status.Convert(err)
	s.requests.WithLabelValues(st.Code().String()).Inc()
	return &ingesterv1.PushPartResult{Code: uint32(st.Code()), Message: st.Message()}
}
