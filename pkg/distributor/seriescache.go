package distributor

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/promgov/promgov/pkg/rules"
)

// seriesCacheShards splits the cache so that concurrent requests rarely
// wait on one another.
const seriesCacheShards = 32

// seriesCache remembers, per distributor, what a series turns into: its
// validation, its rule outcome (with the rule counters to replay), its
// output labels in pkg/record form, their hash and its placement key's
// hash. Senders re-send the same series every scrape interval, so a series
// seen before costs a hash, a lookup and a copy instead of a decode, a
// validation, a relabelling and a re-encoding.
//
// The key is the exact bytes the outcome is a pure function of: tenant,
// the series' labels as sent (remotewrite.ScannedSeries.Key) and, when a
// rule reads metadata, its type and unit. A hit is never another series:
// keys are compared byte for byte, the 64-bit hash only finds them. The
// cache belongs to one ruleset: a reload starts an empty generation.
//
// Bounded: each shard holds at most maxBytes/seriesCacheShards bytes of
// keys and values; a full shard is emptied and refills with the series
// still being sent. It holds no pointers the garbage collector must scan.
// Safe for concurrent use.
type seriesCache struct {
	maxBytes int
	gen      atomic.Pointer[cacheGen]
}

// cacheGen is the cache of one ruleset.
type cacheGen struct {
	eng      *rules.Engine // nil: no rules
	maxBytes int
	shards   [seriesCacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	index   map[uint64]int32 // key hash -> entries index
	entries []cacheEntry
	arena   []byte // keys, output labels and drop messages
}

// Outcomes a cache entry remembers.
const (
	outcomeForward uint8 = iota // kept or changed: forwarded with out labels
	outcomeDropped              // dropped by a rule
)

// cacheEntry is one remembered series. Offsets point into the shard arena.
type cacheEntry struct {
	keyOff, keyLen   uint32
	outOff, outLen   uint32 // output labels (pkg/record label fields)
	nameOff, nameLen uint32 // output metric name, within the output labels
	msgOff, msgLen   uint32 // dropped: the first-drop message
	outHash          uint64 // labels.Labels.Hash of the output labels
	placeHash        uint64 // xxhash of ring.Key(tenant, output name)
	fx               rules.Effects
	rule             int16 // rule that changed or dropped the series, -1 none
	outcome          uint8
	sorted           bool // its labels arrived unsorted and were sorted
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

// name is the output metric name, aliasing v.out.
func (v *cacheValue) name() []byte { return v.out[v.nameOff : v.nameOff+v.nameLen] }

func newSeriesCache(maxBytes int) *seriesCache { return &seriesCache{maxBytes: maxBytes} }

// generation returns the cache generation of eng, starting a new one when
// the ruleset changed.
func (c *seriesCache) generation(eng *rules.Engine) *cacheGen {
	for {
		g := c.gen.Load()
		if g != nil && g.eng == eng {
			return g
		}
		ng := &cacheGen{eng: eng, maxBytes: c.maxBytes}
		if c.gen.CompareAndSwap(g, ng) {
			return ng
		}
	}
}

// hashKey hashes a cache key.
func hashKey(key []byte) uint64 { return xxhash.Sum64(key) }

// get looks key up and, on a hit, appends the value's bytes to buf and
// fills v (whose slices then alias buf's new tail). It returns the
// extended buffer and whether it hit.
func (g *cacheGen) get(key []byte, h uint64, buf []byte, v *cacheValue) ([]byte, bool) {
	sh := &g.shards[h%seriesCacheShards]
	sh.mu.RLock()
	i, ok := sh.index[h]
	if !ok {
		sh.mu.RUnlock()
		return buf, false
	}
	e := &sh.entries[i]
	if !bytes.Equal(sh.arena[e.keyOff:e.keyOff+e.keyLen], key) {
		sh.mu.RUnlock()
		return buf, false
	}
	start := len(buf)
	buf = append(buf, sh.arena[e.outOff:e.outOff+e.outLen]...)
	buf = append(buf, sh.arena[e.msgOff:e.msgOff+e.msgLen]...)
	*v = cacheValue{outHash: e.outHash, placeHash: e.placeHash, fx: e.fx, rule: e.rule, outcome: e.outcome, sorted: e.sorted,
		nameOff: int(e.nameOff), nameLen: int(e.nameLen)}
	end := start + int(e.outLen)
	sh.mu.RUnlock()
	v.out = buf[start:end:end]
	v.msg = buf[end:]
	return buf, true
}

// put remembers key's value; out and msg are copied.
func (g *cacheGen) put(key []byte, h uint64, v *cacheValue) {
	size := len(key) + len(v.out) + len(v.msg)
	limit := g.maxBytes / seriesCacheShards
	if size > limit/64 || !v.fx.Replayable() {
		return // a huge series or an outcome the cache cannot replay
	}
	sh := &g.shards[h%seriesCacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.index == nil || len(sh.arena)+size > limit {
		sh.index = make(map[uint64]int32)
		sh.entries = sh.entries[:0]
		sh.arena = sh.arena[:0]
	}
	if i, ok := sh.index[h]; ok {
		e := &sh.entries[i]
		if bytes.Equal(sh.arena[e.keyOff:e.keyOff+e.keyLen], key) {
			return // put concurrently
		}
	}
	e := cacheEntry{
		outHash: v.outHash, placeHash: v.placeHash, fx: v.fx, rule: v.rule, outcome: v.outcome, sorted: v.sorted,
		nameOff: uint32(v.nameOff), nameLen: uint32(v.nameLen),
	}
	e.keyOff, sh.arena = uint32(len(sh.arena)), append(sh.arena, key...)
	e.keyLen = uint32(len(key))
	e.outOff, sh.arena = uint32(len(sh.arena)), append(sh.arena, v.out...)
	e.outLen = uint32(len(v.out))
	e.msgOff, sh.arena = uint32(len(sh.arena)), append(sh.arena, v.msg...)
	e.msgLen = uint32(len(v.msg))
	sh.index[h] = int32(len(sh.entries))
	sh.entries = append(sh.entries, e)
}
