package forward

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/wal"
)

// poisonSender refuses a whole request with 400 when it holds a poisoned
// series (instance in poison), as a Prometheus 1.0 receiver does for one
// sample too far in the future, and stores the rest otherwise. fail, when
// set, is consulted first with the request's number (from 1).
type poisonSender struct {
	poison map[string]bool
	fail   func(n int) error

	mu        sync.Mutex
	requests  int
	delivered map[string]int // samples by series
	meta      map[string]bool
}

func newPoisonSender(instances ...string) *poisonSender {
	s := &poisonSender{poison: map[string]bool{}, delivered: map[string]int{}, meta: map[string]bool{}}
	for _, i := range instances {
		s.poison[i] = true
	}
	return s
}

func (s *poisonSender) Send(_ context.Context, _ string, req *writev2.Request, meta []prompb.MetricMetadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.fail != nil {
		if err := s.fail(s.requests); err != nil {
			return err
		}
	}
	sb := labels.NewScratchBuilder(0)
	for i := range req.Timeseries {
		ls, err := req.Timeseries[i].ToLabels(&sb, req.Symbols)
		if err != nil {
			return err
		}
		if s.poison[ls.Get("instance")] {
			return &HTTPError{Status: http.StatusBadRequest, Body: "out of bounds: timestamp is too far in the future for series " + ls.String()}
		}
	}
	for i := range req.Timeseries {
		ls, _ := req.Timeseries[i].ToLabels(&sb, req.Symbols)
		s.delivered[ls.Get("instance")] += len(req.Timeseries[i].Samples)
	}
	for _, m := range meta {
		s.meta[m.MetricFamilyName] = true
	}
	return nil
}

func (s *poisonSender) snapshot() (requests int, delivered map[string]int, meta map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]int{}
	for k, v := range s.delivered {
		d[k] = v
	}
	m := map[string]bool{}
	for k, v := range s.meta {
		m[k] = v
	}
	return s.requests, d, m
}

// hosts names host-<i> for each i.
func hosts(ids ...int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf("host-%d", id)
	}
	return out
}

func TestForwarderIsolatesRefusedSeries(t *testing.T) {
	tests := map[string]struct {
		series   int
		poison   []int
		budget   int
		fail     func(n int) error
		rejected map[string]float64 // series by reason
		// maxRequests bounds the requests the backend saw, the first included.
		maxRequests int
		retries     float64
	}{
		"one poison among 500": {series: 501, poison: []int{250}, budget: 64,
			rejected: map[string]float64{"http_400": 1}, maxRequests: 1 + 2*9},
		"poison first":   {series: 501, poison: []int{0}, budget: 64, rejected: map[string]float64{"http_400": 1}, maxRequests: 1 + 2*9},
		"poison last":    {series: 501, poison: []int{500}, budget: 64, rejected: map[string]float64{"http_400": 1}, maxRequests: 1 + 2*9},
		"alone":          {series: 1, poison: []int{0}, budget: 64, rejected: map[string]float64{"http_400": 1}, maxRequests: 1},
		"three poisons":  {series: 500, poison: []int{3, 200, 499}, budget: 64, rejected: map[string]float64{"http_400": 3}, maxRequests: 1 + 3*2*9},
		"two neighbours": {series: 100, poison: []int{41, 42}, budget: 64, rejected: map[string]float64{"http_400": 2}, maxRequests: 1 + 2*2*7},
		"budget runs out: every series refused": {series: 64, poison: seq(64), budget: 8,
			rejected: map[string]float64{"split_budget": 64}, maxRequests: 1 + 8},
		"a part fails with 503 and is retried": {series: 10, poison: []int{7}, budget: 64,
			fail: func(n int) error {
				if n == 2 { // the first half's first attempt
					return &RecoverableError{Err: &HTTPError{Status: 503}}
				}
				return nil
			},
			rejected: map[string]float64{"http_400": 1}, maxRequests: 1 + 1 + 2*4, retries: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newPoisonSender(hosts(tc.poison...)...)
			s.fail = tc.fail
			cfg := testConfig()
			cfg.MinShards, cfg.MaxShards, cfg.MaxSamplesPerSend = 1, 1, 1000
			cfg.MaxSplitRequests = tc.budget
			f, err := NewForwarder(cfg, s, nil, prometheus.NewRegistry())
			require.NoError(t, err)
			b := floatBatch("team-a", 0, tc.series, 1000)
			b.Metadata = []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "Up."}}
			require.NoError(t, f.Append(context.Background(), b))
			runForwarder(t, f)
			require.Eventually(t, func() bool { return f.pending.Load() == 0 }, 30*time.Second, time.Millisecond)

			requests, delivered, meta := s.snapshot()
			poisoned := map[string]bool{}
			for _, h := range hosts(tc.poison...) {
				poisoned[h] = true
			}
			want := map[string]int{}
			for i := range tc.series {
				if h := fmt.Sprintf("host-%d", i); !poisoned[h] {
					want[h] = 1
				}
			}
			var total float64
			for _, n := range tc.rejected {
				total += n
			}
			if tc.rejected["split_budget"] == 0 {
				require.Equal(t, want, delivered, "every series but the refused ones arrives, once")
				require.True(t, meta["up"] || len(want) == 0, "the family metadata travels with the first part")
			}
			require.Equal(t, float64(tc.series)-total, testutil.ToFloat64(f.m.sentSamples))
			require.LessOrEqual(t, requests, tc.maxRequests, "bounded cost")
			require.Equal(t, len(tc.rejected), testutil.CollectAndCount(f.m.rejectedSeries))
			for reason, n := range tc.rejected {
				require.Equal(t, n, testutil.ToFloat64(f.m.rejectedSeries.WithLabelValues(reason)), reason)
				require.Equal(t, n, testutil.ToFloat64(f.m.dropped.WithLabelValues(reason)), reason)
			}
			require.Equal(t, float64(requests-1), testutil.ToFloat64(f.m.splitRequests))
			require.Equal(t, tc.retries, testutil.ToFloat64(f.m.retries))
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestWALForwarderSettlesIsolatedBatch checks that a batch whose refused
// series were isolated settles its records, so the checkpoint moves.
func TestWALForwarderSettlesIsolatedBatch(t *testing.T) {
	w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	s := newPoisonSender(hosts(4)...)
	cfg := walTestConfig()
	end := appendBatch(t, w, floatBatch("team-a", 0, 10, 1000))
	end2 := appendBatch(t, w, floatBatch("team-b", 0, 10, 1000))
	require.True(t, end.Before(end2))
	_, stop := runWALForwarder(t, cfg, w, s)
	require.Eventually(t, func() bool { return w.Checkpoint() == end2 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	_, delivered, _ := s.snapshot()
	require.Len(t, delivered, 9, "both tenants' host-4 refused, everything else written")
}

// TestIsolationStopsAtFlushDeadline: when the flush deadline passes in
// the middle, what was not sent is counted as unsent and the batch's WAL
// records are not settled (they are sent again after the next start).
func TestIsolationStopsAtFlushDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newPoisonSender(hosts(1)...)
	s.fail = func(n int) error {
		if n == 2 { // the first half: the deadline passes while it is sent
			cancel()
			return &RecoverableError{Err: context.Canceled}
		}
		return nil
	}
	cfg := testConfig()
	f, err := NewForwarder(cfg, s, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	f.tr, f.durable = &tracker{}, true
	seqNo := f.tr.add(wal.Position{Segment: 0, Offset: 1})
	b := floatBatch("team-a", 0, 8, 1000)
	p := &pendingRequest{tenant: b.Tenant, batch: record.FromV2(nil, &b.Request), samples: 8}
	f.attach(p, seqNo)
	f.tr.release(seqNo) // the reader's own reference
	f.pending.Store(8)
	f.gate.done(ticket{}, outcomeWritten, 0) // open
	require.True(t, f.isolate(ctx, p, &HTTPError{Status: 400}))
	require.Equal(t, int64(8), f.shutdownDropped.Load(), "nothing was written: all 8 stay for the next start")
	require.Zero(t, f.pending.Load())
	require.Equal(t, 1, f.tr.outstanding(), "the record is not settled")
	require.Zero(t, testutil.CollectAndCount(f.m.rejectedSeries))
}

// BenchmarkIsolate measures the split path: one refused series in a batch
// of 2,000 one-sample series, against an in-process sender that refuses
// any request holding it (so the cost is promgov's, not the network's).
func BenchmarkIsolate(b *testing.B) {
	batch := floatBatch("team-a", 0, 2000, 1000)
	raw := record.FromV2(nil, &batch.Request)
	cfg := testConfig()
	s := newPoisonSender(hosts(1234)...)
	f, err := NewForwarder(cfg, s, nil, nil)
	require.NoError(b, err)
	f.gate.done(ticket{}, outcomeWritten, 0)
	b.ReportAllocs()
	for b.Loop() {
		p := &pendingRequest{tenant: "team-a", batch: raw, samples: 2000}
		f.pending.Store(2000)
		f.isolate(context.Background(), p, &HTTPError{Status: 400})
	}
	requests, _, _ := s.snapshot()
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}
