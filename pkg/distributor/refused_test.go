package distributor

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func TestRefusedError(t *testing.T) {
	require.Nil(t, refusedError(&ingesterv1.PushResponse{SamplesWritten: 3}))
	err := refusedError(&ingesterv1.PushResponse{SamplesWritten: 3, RefusedSeries: 2, RefusedMessage: `cardinality limit max_series_per_metric=1 reached for metric "m" of tenant "t"`})
	require.NotNil(t, err)
	require.Equal(t, http.StatusBadRequest, err.status)
	require.Contains(t, err.msg, "2 series refused")
	require.Contains(t, err.msg, `max_series_per_metric=1 reached for metric "m" of tenant "t"`)
	require.Contains(t, err.msg, "the rest of the request was written")
}
