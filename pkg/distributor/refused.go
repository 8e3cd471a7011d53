package distributor

import (
	"fmt"
	"net/http"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// refusedError is the answer when ingesters refused series under a
// cardinality limit and wrote the rest: 400, so that senders do not retry
// series that would be refused again (docs/cardinality.md, "Refused series
// answer 400"). It is nil when nothing was refused.
func refusedError(total *ingesterv1.PushResponse) *pushError {
	n := total.GetRefusedSeries()
	if n == 0 {
		return nil
	}
	return &pushError{
		status: http.StatusBadRequest,
		msg:    fmt.Sprintf("%d series refused by cardinality limits, first: %s; the rest of the request was written", n, total.GetRefusedMessage()),
	}
}
