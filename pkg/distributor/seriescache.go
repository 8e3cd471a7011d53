package distributor

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

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
// metadata, its type and unit. It is identified by 96 bits of two
// independently seeded xxhashes: among n series two collide with
// probability about n²/2⁹⁷ (10⁻¹⁷ for a million), and the key's bytes need
// not be kept. The seeds are random per generation, so a sender cannot
// craft two series (of its own or of two tenants) that meet in the cache.
//
// Layout, for the memory latency that dominates a lookup among many
// series: a sharded open-addressing index (16 bytes a slot, hash and
// where) points into an append-only arena where each value lies in one
// piece, in the order series were first seen, so a sender's request, which
// repeats its order, reads the arena nearly sequentially.
//
// Bounded: a generation holds at most maxBytes of values; when full, the
// next series seen starts a new, empty one (and the ruleset's generation
// ends with it: a reload starts one too). No pointers for the GC to scan
// but the arena chunks. Safe for concurrent use.
type seriesCache struct {
	maxBytes int
	gen      atomic.Pointer[cacheGen]
}

const (
	seriesCacheShards = 64
	cacheChunkBits    = 20 // 1 MiB arena chunks
	cacheChunkSize    = 1 << cacheChunkBits
	// cacheMaxValue bounds one value (larger series are not cached).
	cacheMaxValue = 16 << 10
	// cacheValueHeader is the fixed part of a value in the arena.
	cacheValueHeader = 48
)

// cacheGen is the cache of one ruleset until it fills up.
type cacheGen struct {
	eng    *rules.Engine // nil: no rules
	seeds  [2]uint64     // of hashKey
	shards [seriesCacheShards]cacheShard

	amu    sync.Mutex
	chunks []*[cacheChunkSize]byte // fixed length; filled in order, never replaced
	cur    int                     // chunk being filled
	used   int                     // bytes used in it
	full   atomic.Bool
}

type cacheShard struct {
	mu    sync.RWMutex
	slots []cacheSlot // power of two, at most half used
	n     int
}

// cacheSlot is one index entry; h1 == 0 marks an empty slot (a hash of 0
// is stored as 1).
type cacheSlot struct {
	h1  uint64
	h2  uint32 // second hash's low half; with h1, 96 bits of key identity
	ref uint32 // chunk << cacheChunkBits | offset of the value
}

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

func newSeriesCache(maxBytes int) *seriesCache { return &seriesCache{maxBytes: maxBytes} }

// generation returns the current generation for eng, starting a new one
// when the ruleset changed or the current one is full.
func (c *seriesCache) generation(eng *rules.Engine) *cacheGen {
	for {
		g := c.gen.Load()
		if g != nil && g.eng == eng && !g.full.Load() {
			return g
		}
		ng := &cacheGen{eng: eng, chunks: make([]*[cacheChunkSize]byte, max(1, c.maxBytes/cacheChunkSize)),
			seeds: [2]uint64{rand.Uint64(), rand.Uint64()}}
		if c.maxBytes <= 0 {
			ng.chunks = nil // the cache is off: every put is refused
		}
		if c.gen.CompareAndSwap(g, ng) {
			return ng
		}
	}
}

// cacheKey is a key's 128-bit identity.
type cacheKey struct{ h1, h2 uint64 }

// hashKey hashes a cache key with g's seeds.
func (g *cacheGen) hashKey(key []byte) cacheKey {
	var d xxhash.Digest
	d.ResetWithSeed(g.seeds[0])
	_, _ = d.Write(key)
	h1 := d.Sum64()
	if h1 == 0 {
		h1 = 1
	}
	d.ResetWithSeed(g.seeds[1])
	_, _ = d.Write(key)
	return cacheKey{h1: h1, h2: d.Sum64()}
}

func (k cacheKey) shard() int { return int(k.h1>>32) % seriesCacheShards }

// find returns the slot of k in sh (sh.mu held) and whether it holds k.
func (sh *cacheShard) find(k cacheKey) (int, bool) {
	if len(sh.slots) == 0 {
		return -1, false
	}
	mask := len(sh.slots) - 1
	for i := int(k.h1) & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.h1 == k.h1 && s.h2 == uint32(k.h2) {
			return i, true
		}
		if s.h1 == 0 {
			return i, false
		}
	}
}

// get looks k up and, on a hit, appends the value's bytes to buf and fills
// v (whose slices then alias buf's new tail). It returns the extended
// buffer and whether it hit.
func (g *cacheGen) get(k cacheKey, buf []byte, v *cacheValue) ([]byte, bool) {
	sh := &g.shards[k.shard()]
	sh.mu.RLock()
	i, ok := sh.find(k)
	var ref uint32
	if ok {
		ref = sh.slots[i].ref
	}
	sh.mu.RUnlock()
	if !ok {
		return buf, false
	}
	// The value was written before its slot was published under sh.mu,
	// and is never written again.
	chunk := g.chunks[ref>>cacheChunkBits]
	off := int(ref & (cacheChunkSize - 1))
	h := chunk[off : off+cacheValueHeader]
	outLen := int(binary.LittleEndian.Uint32(h[40:]))
	msgLen := int(binary.LittleEndian.Uint16(h[44:]))
	*v = cacheValue{
		outHash:   binary.LittleEndian.Uint64(h[0:]),
		placeHash: binary.LittleEndian.Uint64(h[8:]),
		fx:        rules.DecodeEffects((*[rules.EffectsSize]byte)(h[16:])),
		rule:      int16(binary.LittleEndian.Uint16(h[32:])),
		outcome:   h[34],
		sorted:    h[35] != 0,
		nameOff:   int(binary.LittleEndian.Uint16(h[36:])),
		nameLen:   int(binary.LittleEndian.Uint16(h[38:])),
	}
	start := len(buf)
	buf = append(buf, chunk[off+cacheValueHeader:off+cacheValueHeader+outLen+msgLen]...)
	end := start + outLen
	v.out = buf[start:end:end]
	v.msg = buf[end:]
	return buf, true
}

// put remembers k's value; out and msg are copied.
func (g *cacheGen) put(k cacheKey, v *cacheValue) {
	size := cacheValueHeader + len(v.out) + len(v.msg)
	if size > cacheMaxValue || !v.fx.Replayable() || v.nameOff+v.nameLen > 1<<16 || len(v.msg) >= 1<<16 || g.chunks == nil {
		return // a huge series, an outcome the cache cannot replay, or no cache
	}
	sh := &g.shards[k.shard()]
	sh.mu.RLock()
	_, ok := sh.find(k)
	sh.mu.RUnlock()
	if ok {
		return // put concurrently
	}
	ref, dst, ok := g.alloc(size)
	if !ok {
		return
	}
	binary.LittleEndian.PutUint64(dst[0:], v.outHash)
	binary.LittleEndian.PutUint64(dst[8:], v.placeHash)
	v.fx.Encode((*[rules.EffectsSize]byte)(dst[16:]))
	binary.LittleEndian.PutUint16(dst[32:], uint16(v.rule))
	dst[34] = v.outcome
	dst[35] = 0
	if v.sorted {
		dst[35] = 1
	}
	binary.LittleEndian.PutUint16(dst[36:], uint16(v.nameOff))
	binary.LittleEndian.PutUint16(dst[38:], uint16(v.nameLen))
	binary.LittleEndian.PutUint32(dst[40:], uint32(len(v.out)))
	binary.LittleEndian.PutUint16(dst[44:], uint16(len(v.msg)))
	copy(dst[cacheValueHeader:], v.out)
	copy(dst[cacheValueHeader+len(v.out):], v.msg)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if (sh.n+1)*2 > len(sh.slots) {
		sh.grow()
	}
	i, ok := sh.find(k)
	if ok {
		return // put concurrently; this copy stays unused in the arena
	}
	sh.slots[i] = cacheSlot{h1: k.h1, h2: uint32(k.h2), ref: ref}
	sh.n++
}

// alloc reserves size bytes of arena; ok is false (and the generation
// marked full) when none is left.
func (g *cacheGen) alloc(size int) (ref uint32, dst []byte, ok bool) {
	g.amu.Lock()
	defer g.amu.Unlock()
	if g.chunks[g.cur] == nil {
		g.chunks[g.cur] = new([cacheChunkSize]byte)
	}
	if g.used+size > cacheChunkSize {
		if g.cur+1 == len(g.chunks) {
			g.full.Store(true)
			return 0, nil, false
		}
		g.cur, g.used = g.cur+1, 0
		g.chunks[g.cur] = new([cacheChunkSize]byte)
	}
	off := g.used
	g.used += size
	return uint32(g.cur)<<cacheChunkBits | uint32(off), g.chunks[g.cur][off : off+size], true
}

// grow doubles sh's index (sh.mu held).
func (sh *cacheShard) grow() {
	old := sh.slots
	sh.slots = make([]cacheSlot, max(64, 2*len(old)))
	for _, s := range old {
		if s.h1 != 0 {
			i, _ := sh.find(cacheKey{h1: s.h1, h2: uint64(s.h2)})
			sh.slots[i] = s
		}
	}
}
