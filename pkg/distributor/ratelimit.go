package distributor

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/promgov/promgov/pkg/ratelimit"
)

// RateLimiter admits a tenant's samples or refuses them with an
// *ratelimit.ErrLimited. Safe for concurrent use; called once per request.
type RateLimiter interface {
	Admit(tenant string, samples int) error
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)

// rateLimited answers 429 with Retry-After and reports true when in's
// tenant is over its rate. Nothing of a refused request is written.
func (d *Distributor) rateLimited(w http.ResponseWriter, in *intake) bool {
	if d.limiter == nil {
		return false
	}
	err := d.limiter.Admit(in.tenant, in.received.samples+in.received.histograms)
	if err == nil {
		return false
	}
	var lim *ratelimit.ErrLimited
	secs := 1
	if errors.As(err, &lim) {
		secs = max(1, int(math.Ceil(lim.RetryAfter.Seconds())))
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, err.Error(), http.StatusTooManyRequests)
	return true
}
