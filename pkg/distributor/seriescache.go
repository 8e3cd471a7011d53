package distributor

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/promgov/promgov/pkg/rules"
)

// seriesCache remembers, per distributor, what a series turns into: its
// validation, its rule outcome (with the rule counters to replay), its
// output labels in pkg/record form, their hash and its placement key's
// hash. Senders re-send the same series every scrape interval, so a series
// seen before costs a hash, a lookup and a copy instead of a decode, a
// validation, a relabelling and a re-encoding.
//
// The key is what the outcome is a pure function of: tenant, the series'
// labels as sent (remotewrite.ScannedSeries.Key) and, when a rule reads
// metadata, its type and unit. It is identified by 128 bits of two
// independently seeded hashes (hash/maphash): among n series two collide
// with probability about n²/2¹²⁹, and the key's bytes need not be kept.
// The seeds are random per generation, so a sender cannot craft two series
// (of its own or of two tenants) that meet in the cache.
//
// Layout, for the memory latency that dominates a lookup among many
// series: a sharded open-addressing index of 8-byte slots (a 32-bit tag
// and where the value is: eight slots a cache line) points into an
// append-only arena where each value lies in one piece, headed by the
// key's full identity, in the order series were first seen, so a sender's
// request, which repeats its order, reads the arena nearly sequentially.
// Lookups take no lock (slots and tables are published atomically, values
// are written before their slot and never again), and a request looks all
// its series up in one tight loop (probe), so that the cache misses of its
// series overlap instead of following one another.
//
// Bounded: a generation holds at most maxBytes of values. A full one
// stops remembering and stays while it still pays (usefulness below); when
// it no longer does, the next request starts a new, empty one (a reload of
// the ruleset starts one too). The arena's chunks lie outside
// the Go heap and are reused by the next generation once no request
// reads the last one (cachearena.go); the index tables are on the heap,
// with no pointers for the GC to scan. Safe for concurrent use.
type seriesCache struct {
	maxBytes int
	gen      atomic.Pointer[cacheGen]
	pool     *chunkPool
}

const (
	seriesCacheShards = 64
	cacheChunkBits    = 20 // 1 MiB arena chunks
	cacheChunkSize    = 1 << cacheChunkBits
	// cacheMaxValue bounds one value (larger series are not cached).
	cacheMaxValue = 16 << 10
	// cacheValueHeader is the fixed part of a value in the arena.
	cacheValueHeader = 64
)

// cacheGen is the cache of one ruleset until it fills up.
type cacheGen struct {
	eng    *rules.Engine // nil: no rules
	epoch  uint64        // eng's Epoch when the generation started
	seeds  [2]maphash.Seed
	shards [seriesCacheShards]cacheShard

	amu    sync.Mutex
	chunks []*[cacheChunkSize]byte // fixed length; filled in order, never replaced while referenced
	cur    int                     // chunk being filled
	used   int                     // bytes used in it
	full   atomic.Bool

	use usefulness // of a full generation

	owner    *seriesCache // whose pool the chunks go back to
	refs     atomic.Int64 // requests reading g (acquire … release)
	retired  atomic.Bool  // g is no longer the cache's generation
	recycled atomic.Bool  // g's chunks went back to the pool
}

// cacheShard is one part of the index. Readers load its table without a
// lock; writers hold mu, and replace the table by a larger copy to grow it.
type cacheShard struct {
	mu  sync.Mutex
	tab atomic.Pointer[cacheTable] // nil until the first put
	n   int                        // slots used
	_   [40]byte                   // one cache line a shard: writers do not disturb readers of the next
}

// cacheTable is a shard's open-addressing index: a power of two of slots,
// at most half used. A slot is tag<<32 | ref (the value's chunk <<
// cacheChunkBits | offset); 0 is empty (tags are odd).
type cacheTable struct{ slots []uint64 }

// cacheValue is what a lookup copies out of an entry (out and msg into
// the caller's buffer).
type cacheValue struct {
	out              []byte // output labels
	nameOff, nameLen int    // output metric name, within out
	msg              []byte // dropped: first-drop message
	outHash          uint64
	placeHash        uint64
	fx               rules.Effects
	rule             int16
	outcome          uint8
	sorted           bool
}

// Outcomes a cache entry remembers.
const (
	outcomeForward uint8 = iota // kept or changed: forwarded with out labels
	outcomeDropped              // dropped by a rule
)

// name is the output metric name, aliasing v.out.
func (v *cacheValue) name() []byte { return v.out[v.nameOff : v.nameOff+v.nameLen] }

func newSeriesCache(maxBytes int) *seriesCache {
	c := &seriesCache{maxBytes: maxBytes, pool: newChunkPool(chunksPerGen(maxBytes))}
	watchCache(c, c.pool)
	return c
}

// chunksPerGen is how many arena chunks a generation of maxBytes has.
func chunksPerGen(maxBytes int) int { return max(1, maxBytes/cacheChunkSize) }

// acquire returns the current generation for eng, starting a new one
// when the ruleset or its live stages' epoch changed, or the current one
// is full. The caller holds it until it no longer reads values it looked
// up there (release).
func (c *seriesCache) acquire(eng *rules.Engine) *cacheGen {
	var epoch uint64
	if eng != nil {
		// Read before the request's rules run: outcomes a live stage may
		// have changed since (usage.drop_unused) land in a generation
		// the next request replaces.
		epoch = eng.Epoch()
	}
	for {
		g := c.gen.Load()
		if g != nil && g.eng == eng && g.epoch == epoch && !g.use.stale.Load() {
			if g.acquire() {
				return g
			}
			continue // ended meanwhile: take its successor
		}
		ng := &cacheGen{eng: eng, epoch: epoch, chunks: make([]*[cacheChunkSize]byte, chunksPerGen(c.maxBytes)),
			seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, owner: c}
		if c.maxBytes <= 0 {
			ng.chunks = nil // the cache is off: every put is refused
		}
		ng.refs.Store(1) // the caller's
		if c.gen.CompareAndSwap(g, ng) {
			if g != nil {
				g.retire()
			}
			return ng
		}
		// Another request started one first; ng has no chunk yet.
	}
}

// cacheKey is a key's 128-bit identity.
type cacheKey struct{ h1, h2 uint64 }

// hashKey hashes a cache key with g's seeds.
func (g *cacheGen) hashKey(key []byte) cacheKey {
	return cacheKey{h1: maphash.Bytes(g.seeds[0], key), h2: maphash.Bytes(g.seeds[1], key)}
}

// shard is the key's index shard (the top bits of h1; a table's slot
// comes from its low bits).
func (k cacheKey) shard() int { return int(k.h1 >> 58) }

// tag is what a slot keeps of the key (odd, so never 0).
func (k cacheKey) tag() uint64 { return (k.h2>>32 | 1) << 32 }

// slotRef is where a slot's value lies in the arena.
func slotRef(slot uint64) uint32 { return uint32(slot) }

// probe looks every key up in one pass, for the memory-level parallelism
// of independent loads: cands[i] is keys[i]'s candidate (the first slot
// with its tag, to be checked by value), 0 when it is not in the cache.
func (g *cacheGen) probe(keys []cacheKey, cands []uint64) {
	for i, k := range keys {
		cands[i] = 0
		t := g.shards[k.shard()].tab.Load()
		if t == nil {
			continue
		}
		mask := uint64(len(t.slots) - 1)
		tag := k.tag()
		for j := k.h1 & mask; ; j = (j + 1) & mask {
			s := atomic.LoadUint64(&t.slots[j])
			if s == 0 {
				break
			}
			if s&^(1<<32-1) == tag {
				cands[i] = s
				break
			}
		}
	}
}

// value reads the value of candidate slot cand into v when it is k's;
// false when it belongs to another key with the same tag.
func (g *cacheGen) value(cand uint64, k cacheKey, v *cacheValue) bool {
	// The value was written before its slot was published, and is never
	// written again: v's slices alias the arena, which lives as long as g.
	ref := slotRef(cand)
	chunk := g.chunks[ref>>cacheChunkBits]
	off := int(ref & (cacheChunkSize - 1))
	h := chunk[off : off+cacheValueHeader]
	if binary.LittleEndian.Uint64(h[0:]) != k.h1 || binary.LittleEndian.Uint64(h[8:]) != k.h2 {
		return false
	}
	outLen := int(binary.LittleEndian.Uint32(h[56:]))
	msgLen := int(binary.LittleEndian.Uint16(h[60:]))
	*v = cacheValue{
		outHash:   binary.LittleEndian.Uint64(h[16:]),
		placeHash: binary.LittleEndian.Uint64(h[24:]),
		fx:        rules.DecodeEffects((*[rules.EffectsSize]byte)(h[32:])),
		rule:      int16(binary.LittleEndian.Uint16(h[48:])),
		outcome:   h[50],
		sorted:    h[51] != 0,
		nameOff:   int(binary.LittleEndian.Uint16(h[52:])),
		nameLen:   int(binary.LittleEndian.Uint16(h[54:])),
	}
	start := off + cacheValueHeader
	end := start + outLen
	v.out = chunk[start:end:end]
	v.msg = chunk[end : end+msgLen : end+msgLen]
	return true
}

// get looks k up and, on a hit, fills v (whose slices then alias the
// arena, valid as long as g is). probe and value are its fast path, for
// many keys at once.
func (g *cacheGen) get(k cacheKey, v *cacheValue) bool {
	t := g.shards[k.shard()].tab.Load()
	if t == nil {
		return false
	}
	mask := uint64(len(t.slots) - 1)
	tag := k.tag()
	for j := k.h1 & mask; ; j = (j + 1) & mask {
		s := atomic.LoadUint64(&t.slots[j])
		if s == 0 {
			return false
		}
		if s&^(1<<32-1) == tag && g.value(s, k, v) {
			return true
		}
	}
}

// put remembers k's value; out and msg are copied.
func (g *cacheGen) put(k cacheKey, v *cacheValue) {
	size := cacheValueHeader + len(v.out) + len(v.msg)
	if size > cacheMaxValue || !v.fx.Replayable() || v.nameOff+v.nameLen > 1<<16 || len(v.msg) >= 1<<16 || g.chunks == nil || g.full.Load() {
		return // a huge series, an outcome the cache cannot replay, no cache, or a full one
	}
	if g.get(k, &cacheValue{}) {
		return // put concurrently
	}
	ref, dst, ok := g.alloc(size)
	if !ok {
		return
	}
	binary.LittleEndian.PutUint64(dst[0:], k.h1)
	binary.LittleEndian.PutUint64(dst[8:], k.h2)
	binary.LittleEndian.PutUint64(dst[16:], v.outHash)
	binary.LittleEndian.PutUint64(dst[24:], v.placeHash)
	v.fx.Encode((*[rules.EffectsSize]byte)(dst[32:]))
	binary.LittleEndian.PutUint16(dst[48:], uint16(v.rule))
	dst[50] = v.outcome
	dst[51] = 0
	if v.sorted {
		dst[51] = 1
	}
	binary.LittleEndian.PutUint16(dst[52:], uint16(v.nameOff))
	binary.LittleEndian.PutUint16(dst[54:], uint16(v.nameLen))
	binary.LittleEndian.PutUint32(dst[56:], uint32(len(v.out)))
	binary.LittleEndian.PutUint16(dst[60:], uint16(len(v.msg)))
	copy(dst[cacheValueHeader:], v.out)
	copy(dst[cacheValueHeader+len(v.out):], v.msg)

	sh := &g.shards[k.shard()]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if g.get(k, &cacheValue{}) {
		return // put concurrently; this copy stays unused in the arena
	}
	t := sh.tab.Load()
	if t == nil || (sh.n+1)*2 > len(t.slots) {
		t = g.grow(sh, t)
	}
	mask := uint64(len(t.slots) - 1)
	j := k.h1 & mask
	for t.slots[j] != 0 {
		j = (j + 1) & mask
	}
	atomic.StoreUint64(&t.slots[j], k.tag()|uint64(ref))
	sh.n++
	g.use.entries.Add(1)
}

// alloc reserves size bytes of arena; ok is false when none is left (and
// the generation is marked full) or the pool has no chunk to spare at
// the moment (the last generation's readers still hold theirs).
func (g *cacheGen) alloc(size int) (ref uint32, dst []byte, ok bool) {
	g.amu.Lock()
	defer g.amu.Unlock()
	if g.used+size > cacheChunkSize && g.chunks[g.cur] != nil {
		if g.cur+1 == len(g.chunks) {
			g.full.Store(true)
			return 0, nil, false
		}
		g.cur, g.used = g.cur+1, 0
	}
	if g.chunks[g.cur] == nil {
		if g.chunks[g.cur] = g.owner.pool.get(); g.chunks[g.cur] == nil {
			return 0, nil, false
		}
	}
	off := g.used
	g.used += size
	return uint32(g.cur)<<cacheChunkBits | uint32(off), g.chunks[g.cur][off : off+size], true
}

// grow publishes a copy of old (nil: none) twice as large (sh.mu held).
// Readers of the old table may miss what is put after: a miss, which the
// put that follows it finds and skips.
func (g *cacheGen) grow(sh *cacheShard, old *cacheTable) *cacheTable {
	n := 64
	if old != nil {
		n = 2 * len(old.slots)
	}
	t := &cacheTable{slots: make([]uint64, n)}
	if old != nil {
		mask := uint64(n - 1)
		for _, s := range old.slots {
			if s == 0 {
				continue
			}
			// The slot's position comes from its key's h1, which only the
			// value keeps.
			ref := slotRef(s)
			h1 := binary.LittleEndian.Uint64(g.chunks[ref>>cacheChunkBits][ref&(cacheChunkSize-1):])
			for j := h1 & mask; ; j = (j + 1) & mask {
				if t.slots[j] == 0 {
					t.slots[j] = s
					break
				}
			}
		}
	}
	sh.tab.Store(t)
	return t
}
