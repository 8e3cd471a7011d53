package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// testConfig returns a small, fast configuration targeting url.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Metrics, cfg.SeriesPerMetric = 5, 7
	cfg.Labels, cfg.LabelCardinality = 2, 3
	cfg.SeriesPerRequest = 4
	cfg.Duration = 0
	cfg.ReportInterval = 0
	cfg.Concurrency = 2
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 4*time.Millisecond
	return cfg
}

// requestsFor returns the number of requests of n full rounds.
func requestsFor(cfg Config, rounds int) int {
	perRound := (cfg.Metrics*cfg.SeriesPerMetric + cfg.SeriesPerRequest - 1) / cfg.SeriesPerRequest
	return perRound * rounds
}

func TestRunDeliversEverySeries(t *testing.T) {
	const rounds = 3
	tests := []struct {
		name     string
		protocol Protocol
		mutate   func(*Config)
	}{
		{name: "v1 floats", protocol: ProtocolV1},
		{name: "v2 floats", protocol: ProtocolV2},
		{name: "v1 everything", protocol: ProtocolV1, mutate: func(c *Config) {
			c.Histograms, c.Exemplars, c.Metadata, c.Tenant = 0.4, 3, true, "team-a"
		}},
		{name: "v2 everything", protocol: ProtocolV2, mutate: func(c *Config) {
			c.Histograms, c.Exemplars, c.Metadata, c.Tenant = 2, 3, true, "team-a"
		}},
		{name: "v2 one big batch, no extra labels", protocol: "v2", mutate: func(c *Config) {
			c.Labels, c.SeriesPerRequest, c.Concurrency = 0, 1000, 1
		}},
		{name: "v1 rate limited", protocol: "1", mutate: func(c *Config) { c.Rate = 1e6 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			cfg := testConfig(rcv.url())
			cfg.Protocol = tc.protocol
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			cfg.Requests = requestsFor(cfg, rounds)

			rep, err := Run(context.Background(), cfg, nil)
			require.NoError(t, err)

			gen, err := NewGenerator(cfg)
			require.NoError(t, err)
			reqs, headers := rcv.snapshot()
			requireHeaders(t, cfg, headers)
			n := gen.NumSeries()
			total := int64(n * rounds)
			require.Equal(t, int64(cfg.Requests), rep.Requests)
			require.Equal(t, rep.Requests, rep.RequestsOK)
			require.Zero(t, rep.RequestsFailed)
			require.Equal(t, total, rep.SentSamples)
			require.Equal(t, total, rep.AcceptedSamples)
			require.Equal(t, int64(rounds), rep.Rounds)
			require.Equal(t, map[string]int64{"204": int64(cfg.Requests)}, rep.StatusCounts)
			require.Len(t, reqs, cfg.Requests)

			// Index what arrived by series labels.
			bySeries := map[string][]decodedSeries{}
			var floats, hists, exemplars int64
			for _, req := range reqs {
				families := map[string]bool{}
				for _, s := range req.series {
					bySeries[s.labels.String()] = append(bySeries[s.labels.String()], s)
					families[s.labels.Get(model.MetricNameLabel)] = true
					floats += int64(len(s.samples))
					hists += int64(len(s.histograms))
					exemplars += int64(len(s.exemplars))
				}
				if cfg.Metadata && cfg.Protocol.normalize() == ProtocolV1 {
					require.Len(t, req.families, len(families), "one metadata entry per family in the request")
					for f := range families {
						require.Contains(t, req.families, f)
					}
				} else {
					require.Empty(t, req.families)
				}
			}
			if cfg.Protocol.normalize() == ProtocolV2 {
				require.Equal(t, floats, rep.WrittenSamples)
				require.Equal(t, hists, rep.WrittenHistograms)
				require.Equal(t, exemplars, rep.WrittenExemplars)
			} else {
				require.Zero(t, rep.WrittenSamples)
			}

			require.Len(t, bySeries, n)
			var wantExemplars int64
			var roundTS [rounds]int64
			for i := range n {
				got := bySeries[gen.SeriesLabels(i).String()]
				require.Len(t, got, rounds, "series %d", i)
				sort.Slice(got, func(a, b int) bool { return timestampOf(got[a]) < timestampOf(got[b]) })
				for r, s := range got {
					if i == 0 {
						roundTS[r] = timestampOf(s)
					}
					require.Equal(t, roundTS[r], timestampOf(s), "series %d round %d: all series share the round timestamp", i, r)
					if gen.IsHistogram(i) {
						require.Empty(t, s.samples)
						require.Len(t, s.histograms, 1)
						require.Equal(t, RoundHistogram(r).String(), s.histograms[0].String())
					} else {
						require.Empty(t, s.histograms)
						require.Equal(t, []prompb.Sample{{Value: Value(r), Timestamp: roundTS[r]}}, s.samples)
					}
					if gen.HasExemplar(r, i) {
						wantExemplars++
						require.Len(t, s.exemplars, 1)
						require.Equal(t, Value(r), s.exemplars[0].Value)
						require.NotEmpty(t, s.exemplars[0].Labels.Get(TraceIDLabel))
					} else {
						require.Empty(t, s.exemplars)
					}
					if cfg.Metadata && cfg.Protocol.normalize() == ProtocolV2 {
						require.Equal(t, gen.FamilyMetadata(i/cfg.SeriesPerMetric), s.metadata)
					}
				}
			}
			require.Equal(t, wantExemplars, exemplars)
			for r := 1; r < rounds; r++ {
				require.Greater(t, roundTS[r], roundTS[r-1], "round timestamps strictly increase")
			}
		})
	}
}

func timestampOf(s decodedSeries) int64 { return s.timestamp }

func requireHeaders(t *testing.T, cfg Config, headers []http.Header) {
	t.Helper()
	wantType, wantVersion := ContentTypeV1, VersionV1
	if cfg.Protocol.normalize() == ProtocolV2 {
		wantType, wantVersion = ContentTypeV2, VersionV2
	}
	for _, h := range headers {
		require.Equal(t, wantType, h.Get("Content-Type"))
		require.Equal(t, wantVersion, h.Get("X-Prometheus-Remote-Write-Version"))
		require.Equal(t, "snappy", h.Get("Content-Encoding"))
		require.Equal(t, cfg.Tenant, h.Get("X-Scope-OrgID"))
	}
}

func TestRunRetries(t *testing.T) {
	tests := map[string]struct {
		respond    func(n int) int
		mutate     func(*Config)
		requests   int
		wantStatus map[string]int64
		wantOK     int64
		wantFailed int64
		wantRetry  int64
	}{
		"429 retried": {
			respond:    failFirst(2, http.StatusTooManyRequests),
			requests:   3,
			wantStatus: map[string]int64{"429": 2, "204": 3},
			wantOK:     3, wantRetry: 2,
		},
		"503 retried": {
			respond:    failFirst(1, http.StatusServiceUnavailable),
			requests:   2,
			wantStatus: map[string]int64{"503": 1, "204": 2},
			wantOK:     2, wantRetry: 1,
		},
		"400 counted, not retried": {
			respond:    failFirst(1, http.StatusBadRequest),
			requests:   3,
			wantStatus: map[string]int64{"400": 1, "204": 2},
			wantOK:     2, wantFailed: 1,
		},
		"retry disabled": {
			respond:    failFirst(1, http.StatusTooManyRequests),
			mutate:     func(c *Config) { c.Retry = false },
			requests:   2,
			wantStatus: map[string]int64{"429": 1, "204": 1},
			wantOK:     1, wantFailed: 1,
		},
		"max retries exhausted": {
			respond:    func(int) int { return http.StatusInternalServerError },
			mutate:     func(c *Config) { c.MaxRetries = 2 },
			requests:   1,
			wantStatus: map[string]int64{"500": 3},
			wantFailed: 1, wantRetry: 2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rcv := newReceiver(t, tc.respond)
			cfg := testConfig(rcv.url())
			cfg.Concurrency = 1 // the n-th attempt is deterministic
			cfg.Requests = tc.requests
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			rep, err := Run(context.Background(), cfg, nil)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, rep.StatusCounts)
			require.Equal(t, int64(tc.requests), rep.Requests)
			require.Equal(t, tc.wantOK, rep.RequestsOK)
			require.Equal(t, tc.wantFailed, rep.RequestsFailed)
			require.Equal(t, tc.wantRetry, rep.Retries)
			require.Equal(t, int64(tc.requests*cfg.SeriesPerRequest), rep.SentSamples)
			require.Equal(t, tc.wantOK*int64(cfg.SeriesPerRequest), rep.AcceptedSamples)
			reqs, _ := rcv.snapshot()
			require.Len(t, reqs, int(tc.wantOK), "each accepted request arrives exactly once")
		})
	}
}

// failFirst answers the first n attempts with code, then 204.
func failFirst(n, code int) func(int) int {
	return func(i int) int {
		if i < n {
			return code
		}
		return http.StatusNoContent
	}
}

func TestRunTransportErrorCounted(t *testing.T) {
	rcv := newReceiver(t, nil)
	cfg := testConfig(rcv.url())
	rcv.srv.Close() // nothing listens any more
	cfg.Requests, cfg.MaxRetries = 1, 1
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{StatusError: 2}, rep.StatusCounts)
	require.Equal(t, int64(1), rep.RequestsFailed)
	require.Zero(t, rep.AcceptedSamples)
}

// fakeClock advances only when the runner sleeps.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	return ctx.Err()
}

func TestRunRatePacing(t *testing.T) {
	tests := map[string]struct {
		rate      float64
		wantSlept time.Duration
	}{
		// 100 series, 10 per request, 3 rounds = 30 requests of 10 samples;
		// the first goes out at once, the other 29 wait 10 samples/rate each.
		"1000 samples/s": {rate: 1000, wantSlept: 29 * 10 * time.Millisecond},
		"250 samples/s":  {rate: 250, wantSlept: 29 * 40 * time.Millisecond},
		"unlimited":      {rate: 0, wantSlept: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			cfg := testConfig(rcv.url())
			cfg.Metrics, cfg.SeriesPerMetric, cfg.SeriesPerRequest = 10, 10, 10
			cfg.Rate = tc.rate
			cfg.Requests = requestsFor(cfg, 3)
			gen, err := NewGenerator(cfg)
			require.NoError(t, err)
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			r := newRunner(cfg, gen, client, nil)
			r.now, r.sleep = clock.Now, clock.Sleep
			r.logger = discardLogger()

			rep := r.run(context.Background())
			require.Equal(t, int64(30), rep.Requests)
			require.Equal(t, int64(300), rep.AcceptedSamples)
			require.Equal(t, int64(3), rep.Rounds)
			require.Equal(t, tc.wantSlept, clock.slept)
			require.InDelta(t, tc.wantSlept.Seconds(), rep.DurationSeconds, 1e-9)
			if tc.rate > 0 {
				// 300 samples over 29 intervals: the achieved rate is 30/29 of the target.
				require.InDelta(t, tc.rate*30/29, rep.SamplesPerSecond, 1e-6)
			}
		})
	}
}

func TestRunStopsOnCancelAndDuration(t *testing.T) {
	tests := map[string]func(cfg *Config, cancel context.CancelFunc) func(int) int{
		"context cancelled": func(cfg *Config, cancel context.CancelFunc) func(int) int {
			return func(n int) int {
				if n == 5 {
					cancel()
				}
				return http.StatusNoContent
			}
		},
		"duration elapsed": func(cfg *Config, _ context.CancelFunc) func(int) int {
			cfg.Duration = 20 * time.Millisecond
			return nil
		},
		"duration elapsed while retrying forever": func(cfg *Config, _ context.CancelFunc) func(int) int {
			cfg.Duration, cfg.MaxRetries = 20*time.Millisecond, 0
			return func(int) int { return http.StatusServiceUnavailable }
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg := testConfig("http://placeholder")
			respond := setup(&cfg, cancel)
			rcv := newReceiver(t, respond)
			cfg.URL = rcv.url()
			rep, err := Run(ctx, cfg, nil)
			require.NoError(t, err)
			require.Positive(t, rep.Requests)
			require.Equal(t, rep.Requests, rep.RequestsOK+rep.RequestsFailed, "every dispatched request is accounted for")
		})
	}
}

func TestRunInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Concurrency = 0
	_, err := Run(context.Background(), cfg, nil)
	require.ErrorContains(t, err, "concurrency")
}

func TestReportOutput(t *testing.T) {
	rcv := newReceiver(t, failFirst(1, http.StatusTooManyRequests))
	cfg := testConfig(rcv.url())
	cfg.Protocol = ProtocolV2
	cfg.Requests = 4
	cfg.ReportInterval = time.Millisecond // exercise the progress logger
	var logs syncBuffer
	rep, err := Run(context.Background(), cfg, slogTo(&logs))
	require.NoError(t, err)

	var buf bytes.Buffer
	require.NoError(t, rep.Write(&buf, OutputJSON))
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	for _, k := range []string{"accepted_samples", "sent_samples", "written_samples", "samples_per_second", "status_counts", "latency_ms", "requests_ok", "requests_failed"} {
		require.Contains(t, got, k)
	}
	require.Equal(t, float64(16), got["accepted_samples"])
	require.Equal(t, float64(16), got["written_samples"])
	require.Equal(t, map[string]any{"204": float64(4), "429": float64(1)}, got["status_counts"])
	lat, ok := got["latency_ms"].(map[string]any)
	require.True(t, ok)
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		require.Contains(t, lat, k)
	}
	require.LessOrEqual(t, rep.LatencyMS.P50, rep.LatencyMS.P90)
	require.LessOrEqual(t, rep.LatencyMS.P90, rep.LatencyMS.P99)
	require.LessOrEqual(t, rep.LatencyMS.P99, rep.LatencyMS.Max)
	require.Positive(t, rep.LatencyMS.Max)

	buf.Reset()
	require.NoError(t, rep.Write(&buf, OutputText))
	require.Contains(t, buf.String(), "accepted samples:  16")
	require.Contains(t, buf.String(), "429=1")
}

// TestRunWarmup runs entirely inside its warmup: every request is counted,
// and their latency is reported as warmup only.
func TestRunWarmup(t *testing.T) {
	rcv := newReceiver(t, nil)
	cfg := testConfig(rcv.url())
	cfg.Requests = 3
	cfg.Warmup = time.Hour
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.Equal(t, int64(3), rep.RequestsOK)
	require.Zero(t, rep.LatencyMS.Max, "no attempt started after the warmup")
	require.NotNil(t, rep.WarmupLatencyMS)
	require.Positive(t, rep.WarmupLatencyMS.Max)

	var buf bytes.Buffer
	require.NoError(t, rep.Write(&buf, OutputText))
	require.Contains(t, buf.String(), "warmup latency ms:")
	buf.Reset()
	require.NoError(t, rep.Write(&buf, OutputJSON))
	require.Contains(t, buf.String(), `"warmup_latency_ms"`)

	cfg.Duration, cfg.Warmup = time.Second, time.Second
	_, err = Run(context.Background(), cfg, nil)
	require.ErrorContains(t, err, "warmup: must be shorter than duration")
}

// TestRunRoundRobin sends to a list of endpoints in turn: both get
// requests, and retries take turns too, so a run against one endpoint that
// always fails and one that works loses nothing.
func TestRunRoundRobin(t *testing.T) {
	tests := map[string]struct {
		respondA    func(int) int
		wantRetries bool
	}{
		"both healthy":   {},
		"one down (503)": {respondA: func(int) int { return http.StatusServiceUnavailable }, wantRetries: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, b := newReceiver(t, tc.respondA), newReceiver(t, nil)
			cfg := testConfig(a.url() + ", " + b.url())
			cfg.Requests = requestsFor(cfg, 2)
			rep, err := Run(context.Background(), cfg, nil)
			require.NoError(t, err)
			require.Zero(t, rep.RequestsFailed)
			require.Equal(t, rep.SentSamples, rep.AcceptedSamples)
			a.mu.Lock()
			b.mu.Lock()
			defer a.mu.Unlock()
			defer b.mu.Unlock()
			require.Positive(t, a.attempts, "the first endpoint got no attempt")
			require.Positive(t, b.attempts, "the second endpoint got no attempt")
			require.Len(t, append(a.requests, b.requests...), cfg.Requests, "every request accepted exactly once")
			if tc.wantRetries {
				require.Empty(t, a.requests)
				require.Equal(t, int64(a.attempts), rep.Retries, "each failed attempt was retried")
			}
		})
	}
}
