package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Run generates load as described by cfg until cfg.Duration elapses,
// cfg.Requests requests were dispatched or ctx is cancelled, waits for
// in-flight requests and returns the final report. Cancellation is a normal
// way to end a run; the error is non-nil only for an invalid cfg. A nil logger
// discards progress reports.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("invalid loadgen config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gen, err := NewGenerator(cfg)
	if err != nil {
		return Report{}, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return Report{}, err
	}
	transport := &http.Transport{
		TLSClientConfig:     tlsCfg,
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	defer transport.CloseIdleConnections()
	r := newRunner(cfg, gen, &http.Client{Transport: transport}, logger)
	return r.run(ctx), nil
}

// runner executes one run. Its clock and sleep are injectable for tests.
type runner struct {
	cfg      Config
	protocol Protocol
	gen      *Generator
	logger   *slog.Logger
	stats    *stats
	sender   *sender
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	lastErr error
}

func newRunner(cfg Config, gen *Generator, client doer, logger *slog.Logger) *runner {
	st := &stats{}
	p := cfg.Protocol.normalize()
	return &runner{
		cfg: cfg, protocol: p, gen: gen, logger: logger, stats: st,
		sender: &sender{client: client, cfg: cfg, protocol: p, stats: st, sleep: sleepCtx, urls: cfg.URLs()},
		now:    time.Now,
		sleep:  sleepCtx,
	}
}

// run drives producer, senders and progress reporting and returns the final report.
func (r *runner) run(ctx context.Context) Report {
	stop, cancel := ctx, context.CancelFunc(func() {})
	if r.cfg.Duration > 0 {
		stop, cancel = context.WithTimeout(ctx, r.cfg.Duration)
	}
	defer cancel()
	r.stats.start = r.now()
	if r.cfg.Warmup > 0 {
		// Attempts are timed with the wall clock (sender.attempt).
		r.stats.warmupEnd = time.Now().Add(r.cfg.Warmup)
	}

	jobs := make(chan []Point)
	var senders sync.WaitGroup
	for range r.cfg.Concurrency {
		enc, err := NewEncoder(r.gen, r.protocol, r.cfg.Metadata)
		if err != nil { // unreachable: the protocol was validated
			panic(err)
		}
		senders.Go(func() {
			for batch := range jobs {
				r.sendBatch(ctx, stop, enc, batch)
			}
		})
	}
	done := make(chan struct{})
	var progress sync.WaitGroup
	if r.cfg.ReportInterval > 0 {
		progress.Go(func() { r.progress(done) })
	}

	r.produce(stop, jobs)
	close(jobs)
	senders.Wait()
	close(done)
	progress.Wait()

	rep := r.stats.report(r.protocol, r.now())
	if rep.RequestsFailed > 0 {
		r.mu.Lock()
		last := r.lastErr
		r.mu.Unlock()
		r.logger.Warn("some remote write requests failed", "failed", rep.RequestsFailed, "requests", rep.Requests, "last_error", last)
	}
	return rep
}

// sendBatch encodes and sends one batch; failures are summarised at the end.
func (r *runner) sendBatch(ctx, stop context.Context, enc *Encoder, batch []Point) {
	body, err := enc.Encode(batch)
	if err == nil {
		err = r.sender.send(ctx, stop, body, len(batch))
	} else {
		r.stats.requests.Add(1)
		r.stats.failed.Add(1)
	}
	if err != nil {
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
	}
}

// produce generates rounds, splits them into batches and hands them to the
// senders, pacing to cfg.Rate, until stop is done or cfg.Requests batches
// were dispatched.
func (r *runner) produce(stop context.Context, jobs chan<- []Point) {
	p := pacer{rate: r.cfg.Rate}
	var lastTS int64
	dispatched := 0
	for round := 0; ; round++ {
		if stop.Err() != nil {
			return
		}
		// Timestamps strictly increase so rounds never collide.
		ts := max(r.now().UnixMilli(), lastTS+1)
		lastTS = ts
		points := r.gen.Round(round, ts)
		r.stats.rounds.Add(1)
		for off := 0; off < len(points); off += r.cfg.SeriesPerRequest {
			batch := points[off:min(off+r.cfg.SeriesPerRequest, len(points))]
			if d := p.reserve(r.now(), len(batch)); d > 0 {
				if r.sleep(stop, d) != nil {
					return
				}
			}
			select {
			case jobs <- batch:
			case <-stop.Done():
				return
			}
			dispatched++
			if r.cfg.Requests > 0 && dispatched >= r.cfg.Requests {
				return
			}
		}
	}
}

// progress logs a report every cfg.ReportInterval until done is closed.
func (r *runner) progress(done <-chan struct{}) {
	t := time.NewTicker(r.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			rep := r.stats.report(r.protocol, r.now())
			r.logger.Info("loadgen progress",
				"elapsed_s", fmt.Sprintf("%.1f", rep.DurationSeconds),
				"requests_ok", rep.RequestsOK, "requests_failed", rep.RequestsFailed, "retries", rep.Retries,
				"accepted_samples", rep.AcceptedSamples, "written_samples", rep.WrittenSamples,
				"samples_per_second", fmt.Sprintf("%.1f", rep.SamplesPerSecond),
				"status_counts", rep.StatusCounts,
				"p50_ms", rep.LatencyMS.P50, "p99_ms", rep.LatencyMS.P99, "max_ms", rep.LatencyMS.Max)
		}
	}
}

// maxLag is how far the pacer may fall behind schedule before it forgets the
// debt instead of bursting to catch up.
const maxLag = time.Second

// pacer spaces batches so that samples flow at rate per second. Not safe for
// concurrent use; only the producer uses it.
type pacer struct {
	rate float64
	next time.Time
}

// reserve books n samples and returns how long to wait before sending them.
func (p *pacer) reserve(now time.Time, n int) time.Duration {
	if p.rate <= 0 {
		return 0
	}
	if p.next.IsZero() || now.Sub(p.next) > maxLag {
		p.next = now
	}
	wait := max(p.next.Sub(now), 0)
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	return wait
}
