package ingester

import (
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// SetCardinality makes Push govern every batch with obs before the WAL
// append; nil governs nothing. Call it before serving.
func (s *Service) SetCardinality(obs Observer) {
	s.cardinality = obs
}

// response adds g's refusals to r.
func (g governed) response(r *ingesterv1.PushResponse) *ingesterv1.PushResponse {
	r.RefusedSeries = int64(g.refused)
	r.RefusedMessage = g.message
	return r
}
