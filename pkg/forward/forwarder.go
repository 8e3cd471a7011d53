package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Batch is what the ingester hands to the Forwarder: one tenant's series in
// Remote Write 2.0 form plus RW 1.0 family metadata (which may come without
// any series).
type Batch struct {
	// Tenant the data belongs to; sent in BackendConfig.TenantHeader.
	Tenant string
	// Request holds the series; only Symbols and Timeseries are used.
	Request writev2.Request
	// Metadata is RW 1.0 family metadata, possibly for families without
	// series in Request.
	Metadata []prompb.MetricMetadata
}

// Forwarder is the send queue in front of a Sender. Used on its own, data
// accepted by Append lives only in memory until written and is LOST if the
// process dies; the ingester wraps it in a WALForwarder instead, which feeds
// it from the write-ahead log. Append is safe for concurrent use; Run must
// be called once.
type Forwarder struct {
	cfg    Config
	sender Sender
	logger *slog.Logger
	m      forwarderMetrics
	shards []*shard

	pending atomic.Int64 // samples + histograms + exemplars held
	closeMu sync.RWMutex // Append holds it shared; Run exclusively to close
	closed  bool
	running atomic.Bool

	shutdownDropped atomic.Int64

	// tr is set when the Forwarder reads from a WAL (see WALForwarder): it
	// tracks which records each pending request carries. durable means
	// unsent data survives in the WAL, so a shutdown drops nothing.
	tr      *tracker
	durable bool
	space   chan struct{} // capacity 1; signalled when pending shrinks
}

// NewForwarder validates cfg and returns a Forwarder sending through sender.
// logger may be nil (discard); reg may be nil (metrics are not registered).
func NewForwarder(cfg Config, sender Sender, logger *slog.Logger, reg prometheus.Registerer) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("forward config: %w", err)
	}
	if sender == nil {
		return nil, errors.New("forward: sender must not be nil")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{cfg: cfg, sender: sender, logger: logger, shards: make([]*shard, cfg.Concurrency), space: make(chan struct{}, 1)}
	for i := range f.shards {
		f.shards[i] = newShard()
	}
	f.m = newForwarderMetrics(reg, f.pendingSamples, f.oldestPendingAge)
	return f, nil
}

func (f *Forwarder) pendingSamples() float64 { return float64(f.pending.Load()) }

func (f *Forwarder) oldestPendingAge() float64 {
	var oldest time.Time
	for _, s := range f.shards {
		if t := s.oldest(); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest).Seconds()
}

// batchCount is the capacity cost of a batch.
func batchCount(req *writev2.Request) int {
	n := 0
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		n += len(ts.Samples) + len(ts.Histograms) + len(ts.Exemplars)
	}
	return n
}

// validate checks every symbol reference of req.
func validate(req *writev2.Request) error {
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		if err := checkRefs(ts.LabelsRefs, req.Symbols); err != nil {
			return fmt.Errorf("series %d: %w", i, err)
		}
		for j := range ts.Exemplars {
			if err := checkRefs(ts.Exemplars[j].LabelsRefs, req.Symbols); err != nil {
				return fmt.Errorf("series %d exemplar %d: %w", i, j, err)
			}
		}
		if _, err := symbol(req.Symbols, ts.Metadata.HelpRef); err != nil {
			return fmt.Errorf("series %d help: %w", i, err)
		}
		if _, err := symbol(req.Symbols, ts.Metadata.UnitRef); err != nil {
			return fmt.Errorf("series %d unit: %w", i, err)
		}
	}
	return nil
}

// Append queues b for sending. It does not wait for the backend: it fails
// with an error wrapping ErrBackpressure when the queue would exceed
// Config.MaxPendingSamples (a batch is always accepted into an empty queue,
// so an oversized batch cannot wedge the caller), ErrClosed once Run is
// shutting down, and ErrInvalidBatch when a symbol reference is out of
// range. Metadata entries do not count towards MaxPendingSamples; ctx is
// only checked for cancellation. The Forwarder takes ownership of b's slices: the caller must not
// modify them afterwards.
func (f *Forwarder) Append(ctx context.Context, b Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	req := &b.Request
	if len(req.Timeseries) == 0 && len(b.Metadata) == 0 {
		return nil
	}
	if err := validate(req); err != nil {
		return fmt.Errorf("append tenant %q: %w", b.Tenant, err)
	}
	f.closeMu.RLock()
	defer f.closeMu.RUnlock()
	if f.closed {
		return fmt.Errorf("append tenant %q: %w", b.Tenant, ErrClosed)
	}
	n := int64(batchCount(req))
	for {
		cur := f.pending.Load()
		if cur > 0 && cur+n > int64(f.cfg.MaxPendingSamples) {
			f.m.rejected.Add(float64(n))
			return fmt.Errorf("append %d samples for tenant %q with %d pending (max %d): %w",
				n, b.Tenant, cur, f.cfg.MaxPendingSamples, ErrBackpressure)
		}
		if f.pending.CompareAndSwap(cur, cur+n) {
			break
		}
	}
	f.distribute(b.Tenant, req, b.Metadata, 0)
	return nil
}

// appendRecord queues the batch decoded from WAL record seq, waiting (not
// failing) while Config.MaxPendingSamples would be exceeded: with a WAL the
// bound limits how far the reader runs ahead of the backend, and data not
// yet read waits safely on disk. It fails only when ctx ends. The caller
// is the single WAL reader goroutine.
func (f *Forwarder) appendRecord(ctx context.Context, b *Batch, seq uint64) error {
	n := int64(batchCount(&b.Request))
	for {
		cur := f.pending.Load()
		if cur == 0 || cur+n <= int64(f.cfg.MaxPendingSamples) {
			break
		}
		select {
		case <-f.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.pending.Add(n)
	f.distribute(b.Tenant, &b.Request, b.Metadata, seq)
	return nil
}

// release returns n from the pending count and wakes a waiting reader.
func (f *Forwarder) release(n int) {
	f.pending.Add(-int64(n))
	select {
	case f.space <- struct{}{}:
	default:
	}
}

// settle marks p's part of every WAL record it carries as done: it was
// written or dropped as non-recoverable.
func (f *Forwarder) settle(p *pendingRequest) {
	if f.tr == nil {
		return
	}
	for _, seq := range p.records {
		f.tr.release(seq)
	}
}

// shardOf hashes tenant and the series' label strings in the order given
// (Remote Write requires labels sorted by name, so a series always hashes
// the same way).
func (f *Forwarder) shardOf(tenant string, refs []uint32, symbols []string) int {
	if len(f.shards) == 1 {
		return 0
	}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenant)
	for _, r := range refs {
		_, _ = d.WriteString("\xff")
		_, _ = d.WriteString(symbols[r])
	}
	return int(d.Sum64() % uint64(len(f.shards)))
}

// distribute hands the (validated) series and metadata to their shards.
// Family metadata goes to every shard holding a series of that family, or
// to a shard chosen by family name when no series of it is in the batch.
// seq is the WAL record the batch came from (ignored without a WAL).
func (f *Forwarder) distribute(tenant string, req *writev2.Request, meta []prompb.MetricMetadata, seq uint64) {
	shardIdx := make([]int, len(req.Timeseries))
	perShard := make([]int, len(f.shards))
	for i := range req.Timeseries {
		shardIdx[i] = f.shardOf(tenant, req.Timeseries[i].LabelsRefs, req.Symbols)
		perShard[shardIdx[i]]++
	}
	metaShards := make([][]*prompb.MetricMetadata, len(f.shards))
	if len(meta) > 0 {
		idx := newMetaIndex(meta)
		type key struct {
			m     *prompb.MetricMetadata
			shard int
		}
		seen := make(map[key]struct{})
		used := make(map[*prompb.MetricMetadata]struct{})
		for i := range req.Timeseries {
			m := idx.lookup(metricName(req.Timeseries[i].LabelsRefs, req.Symbols))
			if m == nil {
				continue
			}
			used[m] = struct{}{}
			k := key{m, shardIdx[i]}
			if _, ok := seen[k]; !ok {
				seen[k] = struct{}{}
				metaShards[k.shard] = append(metaShards[k.shard], m)
			}
		}
		for i := range meta {
			m := &meta[i]
			if _, ok := used[m]; ok || idx[m.MetricFamilyName] != m {
				continue
			}
			sh := int(xxhash.Sum64String(tenant+"\xff"+m.MetricFamilyName) % uint64(len(f.shards)))
			metaShards[sh] = append(metaShards[sh], m)
		}
	}

	now := time.Now()
	for si, s := range f.shards {
		if perShard[si] == 0 && len(metaShards[si]) == 0 {
			continue
		}
		s.mu.Lock()
		if len(metaShards[si]) > 0 {
			p := s.builder(tenant, now)
			f.attach(p, seq)
			for _, m := range metaShards[si] {
				p.addMetadata(m)
			}
		}
		for i := range req.Timeseries {
			if shardIdx[i] != si {
				continue
			}
			p := s.builder(tenant, now)
			f.attach(p, seq)
			p.addSeries(&req.Timeseries[i], req.Symbols)
			if p.count() >= f.cfg.MaxSamplesPerSend {
				s.seal(tenant)
			}
		}
		s.mu.Unlock()
		s.signal()
	}
}

// Run starts one sender per shard and blocks until ctx is done. It then
// refuses further appends, keeps sending everything pending for at most
// Config.FlushDeadline, and counts whatever is left as dropped with reason
// "shutdown". It returns nil after a shutdown, or an error if called twice.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("forwarder: Run called more than once")
	}
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range f.shards {
		wg.Go(func() { f.runShard(s, stop, sendCtx) })
	}

	<-ctx.Done()
	f.closeMu.Lock()
	f.closed = true
	f.closeMu.Unlock()
	pending := f.pending.Load()
	f.logger.Info("forwarder shutting down, flushing pending data", "pending_samples", pending, "flush_deadline", f.cfg.FlushDeadline)
	flushTimer := time.AfterFunc(f.cfg.FlushDeadline, cancelSend)
	close(stop)
	wg.Wait()
	flushTimer.Stop()
	if n := f.shutdownDropped.Load(); n > 0 && f.durable {
		f.logger.Warn("flush deadline passed; unsent data stays in the WAL and is sent again on the next start", "unsent_samples", n, "flush_deadline", f.cfg.FlushDeadline)
	} else if n > 0 {
		f.logger.Warn("flush deadline passed; pending data dropped", "dropped_samples", n, "flush_deadline", f.cfg.FlushDeadline)
	} else {
		f.logger.Info("forwarder flushed all pending data")
	}
	return nil
}

// runShard sends the shard's requests sequentially until stop is closed and
// everything pending has been sent or dropped.
func (f *Forwarder) runShard(s *shard, stop <-chan struct{}, sendCtx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	stopping := false
	for {
		s.mu.Lock()
		deadline := f.cfg.BatchSendDeadline
		if stopping {
			deadline = 0
		}
		next := s.sealExpired(time.Now(), deadline)
		if len(s.ready) > 0 {
			p := s.ready[0]
			s.ready[0] = nil
			s.ready = s.ready[1:]
			s.inflight = p
			s.mu.Unlock()
			f.sendWithRetry(sendCtx, p)
			s.mu.Lock()
			s.inflight = nil
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		if stopping {
			return
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-s.wake:
		case <-timer.C:
		case <-stop:
			stopping = true
		}
		timer.Stop()
	}
}

// backoff returns the delay before retry number attempt (0-based): uniform
// in [MinBackoff, min(MaxBackoff, MinBackoff*2^attempt)] ("full jitter"
// above the floor).
func (f *Forwarder) backoff(attempt int) time.Duration {
	lo, hi := f.cfg.MinBackoff, f.cfg.MaxBackoff
	ceil := hi
	if attempt < 32 {
		if c := lo << attempt; c > 0 && c < hi {
			ceil = c
		}
	}
	return lo + rand.N(ceil-lo+1)
}

// retryDelay is how long to wait before retry number attempt after err:
// the jittered backoff, or the backend's Retry-After if that is longer.
func (f *Forwarder) retryDelay(attempt int, err error) time.Duration {
	return max(f.backoff(attempt), retryAfter(err))
}

// sendWithRetry sends p until it is written, dropped as non-recoverable, or
// ctx (the flush deadline) ends.
func (f *Forwarder) sendWithRetry(ctx context.Context, p *pendingRequest) {
	req := p.request()
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			f.drop(p, "shutdown", nil)
			return
		}
		start := time.Now()
		err := f.sender.Send(ctx, p.tenant, req, p.meta)
		elapsed := time.Since(start).Seconds()
		switch {
		case err == nil:
			f.m.sendDuration.WithLabelValues("success").Observe(elapsed)
			f.m.sentSamples.Add(float64(p.samples))
			f.m.sentHistograms.Add(float64(p.histograms))
			f.m.sentExemplars.Add(float64(p.exemplars))
			f.m.sentMetadata.Add(float64(len(p.meta)))
			f.release(p.count())
			f.settle(p)
			if attempt > 0 {
				f.logger.Info("batch sent after retries", "tenant", p.tenant, "attempts", attempt+1)
			}
			return
		case IsRecoverable(err) && ctx.Err() == nil:
			f.m.sendDuration.WithLabelValues("recoverable").Observe(elapsed)
			f.m.retries.Inc()
			if attempt == 0 {
				f.logger.Warn("sending batch failed, retrying with backoff", "tenant", p.tenant, "samples", p.count(), "err", err)
			}
			t := time.NewTimer(f.retryDelay(attempt, err))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		default:
			f.m.sendDuration.WithLabelValues("dropped").Observe(elapsed)
			reason := dropReason(err)
			if ctx.Err() != nil {
				reason = "shutdown"
			}
			f.drop(p, reason, err)
			return
		}
	}
}

// drop discards p, counting it under reason and logging once.
func (f *Forwarder) drop(p *pendingRequest, reason string, err error) {
	n := p.count()
	if reason == "shutdown" {
		// Summarised by Run. With a WAL nothing is lost: the records stay
		// uncommitted and are sent again on the next start.
		f.release(n)
		f.shutdownDropped.Add(int64(n))
		if !f.durable {
			f.m.dropped.WithLabelValues(reason).Add(float64(n))
		}
		return
	}
	f.m.dropped.WithLabelValues(reason).Add(float64(n))
	f.release(n)
	f.settle(p)
	f.logger.Warn("batch dropped", "tenant", p.tenant, "reason", reason, "samples", n, "metadata", len(p.meta), "err", err)
}
