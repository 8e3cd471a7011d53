package forward

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/prompb"

	"github.com/promgov/promgov/pkg/record"
)

// pendingRequest is one request for one tenant under construction or
// waiting to be sent: series in pkg/record's batch form, appended entry by
// entry (never re-symbolised; the Client encodes it once per send).
type pendingRequest struct {
	tenant     string
	created    time.Time
	batch      []byte // record entries
	meta       []prompb.MetricMetadata
	metaSeen   map[string]struct{}
	samples    int
	histograms int
	exemplars  int
	records    []uint64 // WAL record sequence numbers carried (WAL mode)
}

// maxRecycledBatch bounds the buffer a recycled pending request keeps.
const maxRecycledBatch = 16 << 20

// newPending returns an empty pending request for tenant, reusing a sent
// one's buffers.
func (f *Forwarder) newPending(tenant string, now time.Time) *pendingRequest {
	p, _ := f.free.Get().(*pendingRequest)
	if p == nil {
		p = new(pendingRequest)
	}
	p.tenant, p.created = tenant, now
	return p
}

// recycle returns p, sent or dropped, for reuse; p must not be used after.
func (f *Forwarder) recycle(p *pendingRequest) {
	batch := p.batch[:0]
	if cap(batch) > maxRecycledBatch {
		batch = nil
	}
	clear(p.meta)
	clear(p.metaSeen)
	*p = pendingRequest{batch: batch, meta: p.meta[:0], metaSeen: p.metaSeen, records: p.records[:0]}
	f.free.Put(p)
}

// count is the capacity cost: samples + histograms + exemplars.
func (p *pendingRequest) count() int { return p.samples + p.histograms + p.exemplars }

// counts is what the request's series carry.
func (p *pendingRequest) counts() Counts {
	return Counts{Samples: p.samples, Histograms: p.histograms, Exemplars: p.exemplars}
}

// addEntry copies one series (an entry of a validated batch) into p.
func (p *pendingRequest) addEntry(e *record.Entry) {
	p.batch = append(p.batch, e.Raw...)
	p.samples += e.Samples
	p.histograms += e.Histograms
	p.exemplars += e.Exemplars
}

// addMetadata adds family metadata once per family.
func (p *pendingRequest) addMetadata(m *prompb.MetricMetadata) {
	if p.metaSeen == nil {
		p.metaSeen = make(map[string]struct{})
	}
	if _, ok := p.metaSeen[m.MetricFamilyName]; ok {
		return
	}
	p.metaSeen[m.MetricFamilyName] = struct{}{}
	p.meta = append(p.meta, *m)
}

// shard owns the pending requests of the series hashed to it and sends them
// sequentially, which keeps every series in order. mu guards all fields but
// wake; the shard goroutine is the only consumer of ready.
type shard struct {
	mu       sync.Mutex
	building map[string]*pendingRequest // by tenant
	ready    []*pendingRequest          // FIFO
	inflight *pendingRequest
	retired  bool          // replaced by a new generation: exit after inflight
	wake     chan struct{} // capacity 1
}

func newShard() *shard {
	return &shard{building: make(map[string]*pendingRequest), wake: make(chan struct{}, 1)}
}

// shardSet is one generation of shards. Series are hashed over its shards,
// so their number is fixed for the generation's life: a reshard builds a
// new generation, moves everything the old one holds but is not sending
// into it (each series' data in its original order, ahead of anything
// newer), and retires the old one. The new generation sends nothing before
// every request the old one had in flight is answered (prev), which keeps
// every series in order across the change.
type shardSet struct {
	shards []*shard
	prev   <-chan struct{} // closed when the previous generation is done
	done   chan struct{}   // closed when every shard goroutine returned
	left   atomic.Int32    // shard goroutines still running
}

// closedChan is a closed channel: the first generation has no predecessor.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newShardSet(n int, prev <-chan struct{}) *shardSet {
	set := &shardSet{shards: make([]*shard, n), prev: prev, done: make(chan struct{})}
	for i := range set.shards {
		set.shards[i] = newShard()
	}
	return set
}

// shardOf places a series by its labels' hash (carried in its entry) and
// its tenant's hash (tenantHash).
func (set *shardSet) shardOf(tenantHash, seriesHash uint64) int {
	if len(set.shards) == 1 {
		return 0
	}
	return int((seriesHash ^ tenantHash) % uint64(len(set.shards)))
}

// metaShardOf places family metadata that travels without a series of its
// family.
func (set *shardSet) metaShardOf(tenant, family string) int {
	return int(xxhash.Sum64String(tenant+"\xff"+family) % uint64(len(set.shards)))
}

// take retires s and returns every request it holds but is not sending,
// oldest first (building requests hold the newest data of their tenant).
func (s *shard) take() []*pendingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = true
	s.sealExpired(time.Time{}, 0)
	reqs := s.ready
	s.ready = nil
	s.signal()
	return reqs
}

// signal wakes the shard goroutine without blocking.
func (s *shard) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// builder returns the tenant's request under construction; s.mu held.
func (s *shard) builder(tenant string, now time.Time, newPending func(string, time.Time) *pendingRequest) *pendingRequest {
	p := s.building[tenant]
	if p == nil {
		p = newPending(tenant, now)
		s.building[tenant] = p
	}
	return p
}

// seal moves the tenant's request under construction to ready; s.mu held.
func (s *shard) seal(tenant string) {
	if p := s.building[tenant]; p != nil {
		delete(s.building, tenant)
		s.ready = append(s.ready, p)
	}
}

// sealExpired seals requests older than deadline (all when deadline is 0)
// and returns when the next one expires (zero if none); s.mu held.
func (s *shard) sealExpired(now time.Time, deadline time.Duration) time.Time {
	var next time.Time
	for tenant, p := range s.building {
		due := p.created.Add(deadline)
		if deadline == 0 || !due.After(now) {
			s.seal(tenant)
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// oldest returns the creation time of the oldest pending request (zero if
// none).
func (s *shard) oldest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	consider := func(p *pendingRequest) {
		if p != nil && (t.IsZero() || p.created.Before(t)) {
			t = p.created
		}
	}
	consider(s.inflight)
	for _, p := range s.ready {
		consider(p)
	}
	for _, p := range s.building {
		consider(p)
	}
	return t
}
