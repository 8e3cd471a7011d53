package distributor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunkPool hands the series cache its arena chunks and takes them back
// when a generation ends, so that a cache that fills and starts over (a
// distributor seeing more series than it holds) reuses its memory instead
// of leaving a full arena to the garbage collector each time.
//
// Chunks come from anonymous memory maps where the platform has them
// (chunk_mmap.go), outside the Go heap: the cache is most of a
// distributor's live memory, and on the heap it would also set the
// collector's target, doubling it (GOGC=100). Off the heap it costs its
// own size and nothing more. Nothing in a chunk is a Go pointer.
//
// A chunk handed back may still be read by a request that looked it up
// before its generation ended; cacheGen's reference count makes that
// impossible (a generation's chunks come back only when no request holds
// it). Safe for concurrent use.
type chunkPool struct {
	mu     sync.Mutex
	free   []*[cacheChunkSize]byte
	mapped []*[cacheChunkSize]byte // every chunk mapped, for unmapAll
	max    int                     // bound on len(mapped)
}

// newChunkPool bounds the chunks of a cache of perGen chunks a generation:
// an eighth more than one generation needs, for the moment when a new
// generation fills while requests still read the old one.
func newChunkPool(perGen int) *chunkPool {
	return &chunkPool{max: perGen + perGen/8 + 1}
}

// get returns a chunk (its bytes are whatever the last generation left;
// values are written before they are published), or nil when the bound is
// reached and none is free.
func (p *chunkPool) get() *[cacheChunkSize]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free = p.free[:n-1]
		return c
	}
	if len(p.mapped) >= p.max {
		return nil
	}
	c := mapChunk()
	p.mapped = append(p.mapped, c)
	return c
}

// put takes back chunks no request can read any more.
func (p *chunkPool) put(chunks []*[cacheChunkSize]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range chunks {
		if c != nil {
			p.free = append(p.free, c)
		}
	}
}

// unmapAll releases every chunk. It runs once the cache is unreachable
// (runtime.AddCleanup in newSeriesCache): generations point to their
// cache, so none is reachable either.
func (p *chunkPool) unmapAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.mapped {
		unmapChunk(c)
	}
	p.mapped, p.free = nil, nil
}

// watchCache unmaps p's chunks when c becomes unreachable (a distributor
// of a test; a running one keeps its cache for the process's life).
func watchCache(c *seriesCache, p *chunkPool) {
	runtime.AddCleanup(c, func(p *chunkPool) { p.unmapAll() }, p)
}

// usefulness decides when a full generation gives way. Starting over
// whenever the cache fills is right when the series sent change (pods come
// and go) and wrong when a sender cycles through more series than the
// cache holds: each generation then fills with series that come back only
// after it was replaced, and nothing ever hits. So a full generation stops
// remembering and is kept, and its hit ratio is measured over windows of
// four times its entries' worth of lookups (long enough for a sender's
// whole cycle through up to four times what the cache holds). The first
// window sets its baseline; it gives way once a window's ratio falls
// below half the baseline (what it holds is no longer sent) or below one
// in a hundred (it never paid).
type usefulness struct {
	entries atomic.Int64 // values remembered
	lookups atomic.Int64 // since full
	hits    atomic.Int64 // since full
	mu      sync.Mutex   // one window's judgement at a time
	winEnd  int64        // lookups at which the current window ends (0: none yet)
	winL    int64        // lookups and hits when the window started
	winH    int64
	base    float64 // the first window's hit ratio (-1: not yet)
	stale   atomic.Bool
}

// Thresholds of usefulness.
const (
	cacheWindowEntries = 4    // a window is this many lookups per entry
	cacheMinWindow     = 4096 // and at least this many
	cacheMinHitRatio   = 0.01
)

// record counts one request's lookups and hits in a full generation and
// judges it at the end of a window.
func (g *cacheGen) record(lookups, hits int) {
	if !g.full.Load() || lookups == 0 {
		return
	}
	u := &g.use
	l, h := u.lookups.Add(int64(lookups)), u.hits.Add(int64(hits))
	if !u.mu.TryLock() {
		return // another request is judging
	}
	defer u.mu.Unlock()
	if u.winEnd == 0 { // the first request after the generation filled
		u.base = -1
		u.winL, u.winH = l, h
		u.winEnd = l + max(cacheMinWindow, cacheWindowEntries*u.entries.Load())
		return
	}
	if l < u.winEnd {
		return
	}
	ratio := float64(h-u.winH) / float64(l-u.winL)
	if u.base < 0 {
		u.base = ratio
	}
	if ratio < cacheMinHitRatio || ratio < u.base/2 {
		u.stale.Store(true)
		return
	}
	u.winL, u.winH = l, h
	u.winEnd = l + max(cacheMinWindow, cacheWindowEntries*u.entries.Load())
}

// A generation's reference count: every request holds the generation it
// read from (acquire … release) until it answered, and a generation that
// ended (retire) gives its chunks back when the last request lets go.
// Sequentially consistent atomics make the hand-back safe: acquire adds
// its reference before it checks retired, retire sets retired before it
// checks the count, so one of them sees the other.

// acquire adds a reference; false when g has ended (the caller takes the
// cache's current generation instead).
func (g *cacheGen) acquire() bool {
	g.refs.Add(1)
	if g.retired.Load() {
		g.release()
		return false
	}
	return true
}

// release drops a reference taken by acquire or by seriesCache.acquire.
func (g *cacheGen) release() {
	if g.refs.Add(-1) == 0 && g.retired.Load() {
		g.recycle()
	}
}

// retire ends g: no new reference is taken, and its chunks go back to
// the pool with the last one.
func (g *cacheGen) retire() {
	g.retired.Store(true)
	if g.refs.Load() == 0 {
		g.recycle()
	}
}

// recycle gives g's chunks back, once.
func (g *cacheGen) recycle() {
	if !g.recycled.CompareAndSwap(false, true) {
		return
	}
	g.amu.Lock()
	defer g.amu.Unlock()
	g.owner.pool.put(g.chunks)
	clear(g.chunks)
}
