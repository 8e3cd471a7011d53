package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
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
	gate   *gate
	load   loadStats
	// backlogDrain is how fast the scaler wants the backlog sent
	// (backlogDrainTime; tests shorten it).
	backlogDrain time.Duration

	// layoutMu guards cur and sets: distribute holds it shared while it
	// places a batch on cur's shards, reshard exclusively to replace cur.
	layoutMu sync.RWMutex
	cur      *shardSet   // the generation new data goes to
	sets     []*shardSet // cur and retired generations still running
	wg       sync.WaitGroup
	// stop (closed when Run begins its shutdown) and sendCtx (cancelled
	// at the flush deadline) are set by Run under layoutMu before any
	// shard starts; nil before Run.
	stop    chan struct{}
	sendCtx context.Context

	pending atomic.Int64 // samples + histograms + exemplars held
	free    sync.Pool    // *pendingRequest sent, kept for their buffers
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
	f := &Forwarder{cfg: cfg, sender: sender, logger: logger, space: make(chan struct{}, 1), backlogDrain: backlogDrainTime}
	f.cur = newShardSet(cfg.MinShards, closedChan)
	f.sets = []*shardSet{f.cur}
	f.m = newForwarderMetrics(reg, f.pendingSamples, f.oldestPendingAge)
	f.m.shards.Set(float64(cfg.MinShards))
	f.m.maxShards.Set(float64(cfg.MaxShards))
	f.gate = newGate(backoff{min: cfg.MinBackoff, max: cfg.MaxBackoff}, func(_ bool, d time.Duration) {
		f.m.backoff.Set(d.Seconds())
	})
	return f, nil
}

func (f *Forwarder) pendingSamples() float64 { return float64(f.pending.Load()) }

func (f *Forwarder) oldestPendingAge() float64 {
	var oldest time.Time
	f.layoutMu.RLock()
	for _, set := range f.sets {
		for _, s := range set.shards {
			if t := s.oldest(); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
		}
	}
	f.layoutMu.RUnlock()
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
	f.distribute(b.Tenant, record.FromV2(nil, req), b.Metadata, 0)
	return nil
}

// appendRecord queues the batch read from WAL record seq, waiting (not
// failing) while Config.MaxPendingSamples would be exceeded: with a WAL the
// bound limits how far the reader runs ahead of the backend, and data not
// yet read waits safely on disk. It fails only when ctx ends. The caller
// is the single WAL reader goroutine.
func (f *Forwarder) appendRecord(ctx context.Context, r *walRecord, seq uint64) error {
	n := int64(r.count)
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
	f.distribute(r.tenant, r.batch, r.meta, seq)
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

// distribute hands the series (entries of a validated batch) and metadata
// to their shards, copying runs of consecutive entries of a shard at once.
// Family metadata goes to every shard holding a series of that family, or
// to a shard chosen by family name when no series of it is in the batch.
// seq is the WAL record the batch came from (ignored without a WAL).
func (f *Forwarder) distribute(tenant string, batch []byte, meta []prompb.MetricMetadata, seq uint64) {
	f.layoutMu.RLock()
	defer f.layoutMu.RUnlock()
	set := f.cur
	th := xxhash.Sum64String(tenant)
	var metaShards [][]*prompb.MetricMetadata
	if len(meta) > 0 {
		metaShards = placeMetadata(set, th, tenant, batch, meta)
	}
	now := time.Now()
	total := 0
	for si, s := range set.shards {
		var (
			p        *pendingRequest
			locked   bool
			runStart = -1
		)
		lock := func() {
			if !locked {
				s.mu.Lock()
				locked = true
			}
		}
		builder := func() *pendingRequest {
			p := s.builder(tenant, now, f.newPending)
			f.attach(p, seq)
			return p
		}
		if metaShards != nil && len(metaShards[si]) > 0 {
			lock()
			p = builder()
			for _, m := range metaShards[si] {
				p.addMetadata(m)
			}
		}
		it := record.NewIter(batch)
		for it.Next() {
			e := it.Entry()
			if len(set.shards) > 1 && set.shardOf(th, e.Hash) != si {
				if runStart >= 0 {
					p.batch = append(p.batch, batch[runStart:it.Offset()]...)
					runStart = -1
				}
				continue
			}
			lock()
			if p == nil {
				p = builder()
			}
			if runStart < 0 {
				runStart = it.Offset()
			}
			p.samples += e.Samples
			p.histograms += e.Histograms
			p.exemplars += e.Exemplars
			total += e.Count()
			if p.count() >= f.cfg.MaxSamplesPerSend {
				p.batch = append(p.batch, batch[runStart:it.Offset()+len(e.Raw)]...)
				runStart = -1
				s.seal(tenant)
				p = nil
			}
		}
		if runStart >= 0 {
			p.batch = append(p.batch, batch[runStart:]...)
		}
		if locked {
			s.mu.Unlock()
			s.signal()
		}
	}
	f.load.in.Add(int64(total))
}

// placeMetadata returns, per shard, the family metadata it must carry:
// each family goes with the shards holding its series, or to one shard by
// family name.
func placeMetadata(set *shardSet, th uint64, tenant string, batch []byte, meta []prompb.MetricMetadata) [][]*prompb.MetricMetadata {
	out := make([][]*prompb.MetricMetadata, len(set.shards))
	idx := record.NewMetaIndex(meta)
	seen := make(map[metaKey]struct{})
	used := make(map[*prompb.MetricMetadata]struct{})
	it := record.NewIter(batch)
	for it.Next() {
		e := it.Entry()
		m := idx.Lookup(string(record.MetricName(e.Series)))
		if m == nil {
			continue
		}
		used[m] = struct{}{}
		k := metaKey{m, set.shardOf(th, e.Hash)}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out[k.shard] = append(out[k.shard], m)
		}
	}
	for i := range meta {
		m := &meta[i]
		if _, ok := used[m]; ok || idx[m.MetricFamilyName] != m {
			continue
		}
		sh := set.metaShardOf(tenant, m.MetricFamilyName)
		out[sh] = append(out[sh], m)
	}
	return out
}

// metaKey is one family's metadata on one shard.
type metaKey struct {
	m     *prompb.MetricMetadata
	shard int
}

// Run starts the shards and the shard scaler and blocks until ctx is done.
// It then refuses further appends, keeps sending everything pending for at
// most Config.FlushDeadline, and counts whatever is left as dropped with
// reason "shutdown". It returns nil after a shutdown, or an error if called
// twice.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("forwarder: Run called more than once")
	}
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	f.layoutMu.Lock()
	f.stop, f.sendCtx = make(chan struct{}), sendCtx
	f.startSet(f.cur)
	f.layoutMu.Unlock()
	scalerDone := make(chan struct{})
	go func() {
		defer close(scalerDone)
		f.scale()
	}()

	<-ctx.Done()
	f.closeMu.Lock()
	f.closed = true
	f.closeMu.Unlock()
	pending := f.pending.Load()
	f.logger.Info("forwarder shutting down, flushing pending data", "pending_samples", pending, "flush_deadline", f.cfg.FlushDeadline)
	flushTimer := time.AfterFunc(f.cfg.FlushDeadline, cancelSend)
	close(f.stop) // set before the goroutines started; never written again
	<-scalerDone  // no generation starts after this
	f.wg.Wait()
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

// startSet starts one goroutine per shard of set; the last to return
// closes set.done and forgets the set. f.layoutMu is held.
func (f *Forwarder) startSet(set *shardSet) {
	set.left.Store(int32(len(set.shards)))
	stop, sendCtx := f.stop, f.sendCtx
	for _, s := range set.shards {
		f.wg.Go(func() {
			f.runShard(set, s, stop, sendCtx)
			if set.left.Add(-1) == 0 {
				close(set.done)
				f.layoutMu.Lock()
				f.sets = slices.DeleteFunc(f.sets, func(x *shardSet) bool { return x == set })
				f.layoutMu.Unlock()
			}
		})
	}
}

// runShard sends the shard's requests sequentially, once the previous
// generation is done, until stop is closed and everything pending has been
// sent or dropped, or until the shard is retired and its request in flight
// is answered.
func (f *Forwarder) runShard(set *shardSet, s *shard, stop <-chan struct{}, sendCtx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	prev := set.prev
	stopping := false
	for {
		if prev != nil {
			select {
			case <-prev:
				prev = nil
			default:
			}
		}
		s.mu.Lock()
		deadline := f.cfg.BatchSendDeadline
		if stopping {
			deadline = 0
		}
		next := s.sealExpired(time.Now(), deadline)
		if len(s.ready) > 0 && prev == nil {
			p := s.ready[0]
			s.ready[0] = nil
			s.ready = s.ready[1:]
			s.inflight = p
			s.mu.Unlock()
			f.sendWithRetry(sendCtx, p)
			s.mu.Lock()
			s.inflight = nil
			s.mu.Unlock()
			f.recycle(p)
			continue
		}
		// A generation is done only after its predecessor: the next one
		// waits for this one alone.
		idle := len(s.ready) == 0 && prev == nil
		retired := s.retired
		s.mu.Unlock()
		if idle && (retired || stopping) {
			return
		}
		if !next.IsZero() && prev == nil {
			timer.Reset(time.Until(next))
		}
		stopCh := stop
		if stopping {
			stopCh = nil
		}
		select {
		case <-s.wake:
		case <-timer.C:
		case <-stopCh:
			stopping = true
		case <-prev:
			prev = nil
		}
		timer.Stop()
	}
}
