package distributor

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

// TestInstanceLimits: while requests are held in an ingester, a request
// past an instance limit is answered 503 with Retry-After, naming the
// flag; once they are answered the distributor serves again.
func TestInstanceLimits(t *testing.T) {
	held := v1Body(t, manyMetrics(200))
	next := v1Body(t, manyMetrics(1))
	// What a request holds: its buffers, in power-of-two sizes from 4 KiB.
	bufCap := func(n int) int64 {
		c := int64(4 << 10)
		for c < int64(n) {
			c *= 2
		}
		return c
	}
	decoded, err := snappy.DecodedLen(held)
	require.NoError(t, err)
	// One request holds its body's and its payload's buffers while it is
	// read, then its payload's until it is answered.
	oneFits := bufCap(len(held)+1) + bufCap(decoded)
	for name, tc := range map[string]struct {
		mod  func(*Config)
		held int
		flag string
	}{
		"in-flight requests": {
			mod:  func(c *Config) { c.MaxInflightPushRequests = 2 },
			held: 2, flag: "-distributor.max-inflight-push-requests",
		},
		"in-flight bytes": {
			// One held request's payload fits; a second one's does not.
			mod:  func(c *Config) { c.MaxInflightPushBytes = oneFits + bufCap(decoded)/2 },
			held: 1, flag: "-distributor.max-inflight-push-bytes",
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := newTestClusterWith(t, 1, 10*time.Second, tc.mod)
			release := make(chan struct{})
			entered := make(chan struct{}, tc.held+1)
			var once sync.Once
			defer once.Do(func() { close(release) })
			c.recorders["ingester-0"].fail = func(context.Context) error {
				entered <- struct{}{}
				<-release
				return nil
			}
			var wg sync.WaitGroup
			for range tc.held {
				wg.Go(func() {
					if w := post(t, c.dist, "application/x-protobuf", held, ""); w.Code != http.StatusNoContent {
						t.Errorf("held request: %d %s", w.Code, w.Body.String())
					}
				})
			}
			for range tc.held {
				<-entered
			}
			body := next
			if tc.held == 1 {
				body = held
			}
			w := post(t, c.dist, "application/x-protobuf", body, "")
			require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
			require.Equal(t, "3", w.Header().Get("Retry-After"))
			require.Contains(t, w.Body.String(), tc.flag)

			once.Do(func() { close(release) })
			wg.Wait()
			w = post(t, c.dist, "application/x-protobuf", body, "")
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			require.Zero(t, c.dist.budget.Used())
			require.Zero(t, c.dist.inflight.Load())
		})
	}
}
