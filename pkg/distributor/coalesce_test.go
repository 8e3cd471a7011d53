package distributor

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// gatedPusher holds every Push until the test lets it through, and keeps
// the part count of each: it injects the slow ingester a real one does not
// produce on demand. The Pushes then reach real ingesters over gRPC.
type gatedPusher struct {
	next  Pusher
	gate  chan struct{}
	mu    sync.Mutex
	parts []int // per Push: 1, or len(part_ends)
}

func (g *gatedPusher) Push(ctx context.Context, addr string, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	g.mu.Lock()
	g.parts = append(g.parts, max(1, len(req.GetPartEnds())))
	g.mu.Unlock()
	<-g.gate
	return g.next.Push(ctx, addr, req)
}

func (g *gatedPusher) pushes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.parts...)
}

// v2Request is a RW 2.0 body of n series of metric m, each with samples
// samples and one exemplar.
func v2Request(t *testing.T, m string, n, samples int) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for i := range n {
		ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", m, "i", fmt.Sprint(i)), nil),
			Exemplars: []writev2.Exemplar{{Value: 1, Timestamp: 1}}}
		for s := range samples {
			ts.Samples = append(ts.Samples, writev2.Sample{Value: 1, Timestamp: int64(s + 1)})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// TestPushesCoalesce: with one Push in flight per ingester, the parts of
// the requests that arrive meanwhile leave together in the next Push, and
// every request is still answered with its own counts (RW 2.0 Written
// headers) once its own series are written.
func TestPushesCoalesce(t *testing.T) {
	tc := newTestClusterWith(t, 1, 5*time.Second, func(c *Config) { c.MaxPushesInFlightPerIngester = 1 })
	g := &gatedPusher{next: tc.deps.Pusher, gate: make(chan struct{})}
	tc.with(func(d *Deps) { d.Pusher = g })

	const ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	answers := make([]*httptest.ResponseRecorder, 4)
	var wg sync.WaitGroup
	send := func(i int) {
		wg.Go(func() { answers[i] = post(t, tc.dist, ct, v2Request(t, fmt.Sprintf("m%d", i), i+1, i+1), "") })
	}
	send(0)
	require.Eventually(t, func() bool { return len(g.pushes()) == 1 }, 5*time.Second, time.Millisecond, "the first request's Push leaves at once")
	for i := 1; i < 4; i++ {
		send(i)
	}
	require.Eventually(t, func() bool { return tc.dist.pushes.waiting() == 3 }, 5*time.Second, time.Millisecond, "the other three wait for the slot")
	close(g.gate)
	wg.Wait()

	require.Equal(t, []int{1, 3}, g.pushes(), "the three waiting parts left in one Push")
	for i, w := range answers {
		n := (i + 1) * (i + 1)
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
		require.Equal(t, fmt.Sprint(n), w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"), "request %d", i)
		require.Equal(t, fmt.Sprint(i+1), w.Header().Get("X-Prometheus-Remote-Write-Exemplars-Written"), "request %d", i)
	}
	got := tc.recorders["ingester-0"].seriesNames()
	require.Len(t, got, 1+2+3+4)
}

// TestWaitingPartLeavesWithItsRequest: a request that gives up while its
// part waits takes the part out of the queue; it is never sent.
func TestWaitingPartLeavesWithItsRequest(t *testing.T) {
	tc := newTestClusterWith(t, 1, 5*time.Second, func(c *Config) { c.MaxPushesInFlightPerIngester = 1 })
	g := &gatedPusher{next: tc.deps.Pusher, gate: make(chan struct{})}
	tc.with(func(d *Deps) { d.Pusher = g })

	var wg sync.WaitGroup
	wg.Go(func() { post(t, tc.dist, "application/x-protobuf", v1Body(t, manyMetrics(1)), "") })
	require.Eventually(t, func() bool { return len(g.pushes()) == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	var gone *httptest.ResponseRecorder
	wg.Go(func() {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/write", bytes.NewReader(v1Body(t, manyMetrics(2))))
		r.Header.Set("Content-Type", "application/x-protobuf")
		r.Header.Set("Content-Encoding", "snappy")
		gone = httptest.NewRecorder()
		tc.dist.ServeHTTP(gone, r)
	})
	require.Eventually(t, func() bool { return tc.dist.pushes.waiting() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.Eventually(t, func() bool { return tc.dist.pushes.waiting() == 0 }, 5*time.Second, time.Millisecond)
	close(g.gate)
	wg.Wait()

	require.Equal(t, http.StatusServiceUnavailable, gone.Code, gone.Body.String())
	require.Equal(t, []int{1}, g.pushes(), "the abandoned part was not sent")
	require.Len(t, tc.recorders["ingester-0"].seriesNames(), 3, "only the first request's series")
}
