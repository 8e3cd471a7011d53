package ingester

import (
	"time"

	"github.com/promgov/promgov/pkg/cardinality"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// AdmitAll is the Observer of a Service that governs nothing: it admits
// every series.
type AdmitAll struct{}

// Observe implements Observer.
func (AdmitAll) Observe(*cardinality.Series, time.Time) cardinality.Decision {
	return cardinality.Decision{Admit: true}
}

// response adds g's refusals to r.
func (g governed) response(r *ingesterv1.PushResponse) *ingesterv1.PushResponse {
	r.RefusedSeries = int64(g.refused)
	r.RefusedMessage = g.message
	return r
}
