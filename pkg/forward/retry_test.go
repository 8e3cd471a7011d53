package forward

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// arrival is one request as a recording receiver saw it.
type arrival struct {
	at       time.Time
	status   int
	inflight int // requests in flight when it arrived, itself included
}

// recorder wraps a test receiver: it records when each request arrives,
// how many are in flight at once and the answer's status, and holds every
// answer for hold (the backend's latency). Faults are injected through the
// receiver's script; a real backend cannot be made to fail on demand.
type recorder struct {
	*receiver
	hold time.Duration

	mu       sync.Mutex
	inflight int
	log      []arrival
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func newRecorder(t *testing.T, hold time.Duration) *recorder {
	rec := &recorder{receiver: newReceiver(t, modeV2), hold: hold}
	rec.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.inflight++
		i := len(rec.log)
		rec.log = append(rec.log, arrival{at: time.Now(), inflight: rec.inflight})
		rec.mu.Unlock()
		time.Sleep(rec.hold) // the fake backend's latency
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rec.handle(sw, r)
		rec.mu.Lock()
		rec.inflight--
		rec.log[i].status = sw.status
		rec.mu.Unlock()
	})
	return rec
}

// failWith makes the backend answer status to every request while down is
// set, and returns the setter.
func (r *recorder) failWith(status int) (setDown func(bool)) {
	var mu sync.Mutex
	down := false
	r.receiver.mu.Lock()
	r.faultFn = func(int) *fault {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return &fault{status: status, body: "down"}
		}
		return nil
	}
	r.receiver.mu.Unlock()
	return func(v bool) {
		mu.Lock()
		down = v
		mu.Unlock()
	}
}

// script queues answers for the next requests.
func (r *recorder) script(faults ...fault) {
	r.receiver.mu.Lock()
	r.faults = append(r.faults, faults...)
	r.receiver.mu.Unlock()
}

func (r *recorder) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.log...)
}

// gaps returns the time between consecutive arrivals from index from on.
func gaps(log []arrival, from int) []time.Duration {
	var out []time.Duration
	for i := from + 1; i < len(log); i++ {
		out = append(out, log[i].at.Sub(log[i-1].at))
	}
	return out
}

func fmtGaps(gs []time.Duration) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.Round(time.Millisecond).String()
	}
	return strings.Join(parts, ", ")
}

// requireGapsWithin checks every gap against the backoff bounds: at least
// the jittered floor of its delay (nothing may come early), at most the
// delay plus slack for the round trip and scheduling.
func requireGapsWithin(t *testing.T, got []time.Duration, want []time.Duration, retryAfter map[int]time.Duration) {
	t.Helper()
	const slack = 200 * time.Millisecond
	require.Len(t, got, len(want), "gaps %s", fmtGaps(got))
	for i, ceil := range want {
		lo, hi := time.Duration(float64(ceil)*(1-BackoffJitter)), ceil+slack
		if ra, ok := retryAfter[i]; ok {
			lo, hi = ra, ra+slack
		}
		require.GreaterOrEqual(t, got[i], lo, "gap %d of %s", i, fmtGaps(got))
		require.LessOrEqual(t, got[i], hi, "gap %d of %s", i, fmtGaps(got))
	}
}

// TestRetriesBackOffAsOneStream drives a forwarder with four loaded shards
// against a backend that fails: the retries form a single stream (one
// request in flight at a time) whose gaps double within the jitter bound up
// to MaxBackoff, Retry-After is honoured, and after a success the backoff
// starts again from MinBackoff.
func TestRetriesBackOffAsOneStream(t *testing.T) {
	rec := newRecorder(t, 5*time.Millisecond)
	// Outage from the start: five 503s, a 429 asking for 1s, one more 503.
	unavailable := fault{status: http.StatusServiceUnavailable, body: "down"}
	rec.script(unavailable, unavailable, unavailable, unavailable, unavailable,
		fault{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "1"}, body: "slow down"},
		unavailable)

	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards = 4, 4
	cfg.MinBackoff, cfg.MaxBackoff = 50*time.Millisecond, 800*time.Millisecond
	cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 10, 5*time.Millisecond
	f, _ := newTestForwarder(t, cfg, rec.url(), 2)
	var batches []Batch
	for i := range 4 {
		b := floatBatch("t", 0, 40, int64(1000*(i+1)))
		batches = append(batches, floatBatch("t", 0, 40, int64(1000*(i+1))))
		require.NoError(t, f.Append(context.Background(), b))
	}
	stop := runForwarder(t, f)
	require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)

	log := rec.arrivals()
	require.Greater(t, len(log), 8)
	outage := log[:8] // seven failures, then the first success
	for i, a := range outage {
		require.Equal(t, 1, a.inflight, "request %d reached the failing backend while another was in flight", i)
	}
	require.Equal(t, http.StatusServiceUnavailable, outage[0].status)
	require.Equal(t, http.StatusNoContent, outage[7].status)
	g := gaps(outage, 0)
	t.Logf("outage from the start, 4 shards with data: retry gaps %s; max in flight 1", fmtGaps(g))
	requireGapsWithin(t, g,
		[]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
			800 * time.Millisecond, 800 * time.Millisecond, 800 * time.Millisecond},
		map[int]time.Duration{5: time.Second}) // after the 429 with Retry-After: 1
	maxInflight := 0
	for _, a := range log[8:] {
		maxInflight = max(maxInflight, a.inflight)
	}
	t.Logf("after recovery: %d requests, up to %d in flight at once", len(log)-8, maxInflight)
	require.Greater(t, maxInflight, 1, "once the backend answers, the shards send in parallel again")

	// A second outage after the success: the backoff starts from
	// MinBackoff again.
	rec.script(unavailable, unavailable, unavailable)
	next := len(rec.arrivals())
	b := floatBatch("t", 0, 1, 9000)
	batches = append(batches, floatBatch("t", 0, 1, 9000))
	require.NoError(t, f.Append(context.Background(), b))
	require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)
	second := rec.arrivals()[next:]
	require.Len(t, second, 4)
	g = gaps(second, 0)
	t.Logf("second outage: retry gaps %s", fmtGaps(g))
	requireGapsWithin(t, g, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, nil)

	require.NoError(t, stop())
	_, got := rec.snapshot()
	require.Equal(t, expected(batches...), got, "everything arrives, every series in order")
	require.Equal(t, 10.0, testutil.ToFloat64(f.m.retries))
	require.Zero(t, testutil.CollectAndCount(f.m.dropped))
}

// TestRetriesOneStreamMidFlight lets the backend fail while four shards
// are sending: the requests already in flight fail, and from then on only
// one request at a time reaches the backend until it answers again.
func TestRetriesOneStreamMidFlight(t *testing.T) {
	rec := newRecorder(t, 10*time.Millisecond)
	setDown := rec.failWith(http.StatusBadGateway)
	cfg := testConfig()
	cfg.MinShards, cfg.MaxShards = 4, 4
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	cfg.MaxSamplesPerSend, cfg.BatchSendDeadline = 5, 5*time.Millisecond
	f, _ := newTestForwarder(t, cfg, rec.url(), 2)
	stop := runForwarder(t, f)
	var batches []Batch
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var appendMu sync.Mutex
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond) // 800 samples/s: 160 requests/s of 400 possible
		defer tick.Stop()
		for i := int64(1); ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			appendMu.Lock()
			if err := f.Append(ctx, floatBatch("t", 0, 4, i)); err == nil {
				batches = append(batches, floatBatch("t", 0, 4, i))
			}
			appendMu.Unlock()
		}
	})
	// Healthy with parallel sends first.
	require.Eventually(t, func() bool {
		for _, a := range rec.arrivals() {
			if a.inflight > 1 {
				return true
			}
		}
		return false
	}, 30*time.Second, 5*time.Millisecond, "the shards never sent in parallel")
	setDown(true)
	failedAt := len(rec.arrivals())
	require.Eventually(t, func() bool { return len(rec.arrivals()) >= failedAt+12 }, 30*time.Second, 5*time.Millisecond)
	setDown(false)
	cancel()
	wg.Wait()
	require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())

	// The first failures are the requests that were already in flight
	// (at most one per shard); every later request came alone.
	log := rec.arrivals()
	failures := 0
	var alone []arrival
	for _, a := range log[failedAt:] {
		if a.status != http.StatusBadGateway {
			break
		}
		failures++
		if failures > cfg.MaxShards {
			alone = append(alone, a)
		}
	}
	require.Greater(t, len(alone), 3)
	for i, a := range alone {
		require.Equal(t, 1, a.inflight, "retry %d met another request at the failing backend", i)
	}
	t.Logf("mid-flight outage: %d failed requests, the last %d one at a time, gaps %s", failures, len(alone), fmtGaps(gaps(alone, 0)))
	_, got := rec.snapshot()
	appendMu.Lock()
	require.Equal(t, expected(batches...), got, fmt.Sprintf("%d batches arrive in order", len(batches)))
	appendMu.Unlock()
}
