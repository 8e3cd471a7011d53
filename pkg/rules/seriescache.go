package rules

import (
	"bytes"
	"math/bits"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Series cache geometry: seriesCacheShards shards, each an open-addressing
// table of seriesCacheSlots slots (at most half used) and a key arena of
// seriesCacheArena bytes, allocated on the shard's first insert. That is
// about 2.5 MiB per ruleset in use, remembering up to 16,384 series; a
// shard that fills up is cleared and refills with the series still sent.
const (
	seriesCacheShards = 16
	seriesCacheSlots  = 2048
	seriesCacheArena  = 128 << 10
	seriesCacheMaxKey = 1024 // longer series are not cached
)

// seriesCache remembers series (tenant, labels, type, unit) that no rule
// acted on: no rule in scope found anything to do, in either mode. Such a
// series is a pure pass-through, so when it comes again (senders re-send
// the same series every scrape interval) Apply answers Kept without
// evaluating the rules. The only side effect of such a series, the
// type-unknown counters, is remembered with it (as a bit per rule) and
// replayed on every hit, so metrics stay exactly as without the cache.
// Keys are the exact series bytes: a hit is never a different series. The
// cache dies with its ruleset on reload. Safe for concurrent use; neither
// lookups nor inserts allocate once a shard exists.
type seriesCache struct {
	shards [seriesCacheShards]seriesShard
}

type seriesShard struct {
	mu    sync.RWMutex
	slots []seriesSlot // nil until the first insert
	arena []byte
	used  int
}

// seriesSlot is one remembered series; h == 0 marks an empty slot.
type seriesSlot struct {
	h        uint64
	off, len uint32
	// typeUnknown has bit i set when rule i counted a skipped type check.
	typeUnknown uint64
}

// seriesKey renders s into buf as a cache key.
func seriesKey(buf []byte, s *Series) []byte {
	buf = s.Labels.Bytes(buf)
	buf = append(buf, 0xff)
	buf = append(buf, s.Tenant...)
	buf = append(buf, 0xff)
	buf = append(buf, s.Meta.Type...)
	buf = append(buf, 0xff)
	buf = append(buf, s.Meta.Unit...)
	return buf
}

// hashKey returns the key's hash, never 0.
func hashKey(key []byte) uint64 { return xxhash.Sum64(key) | 1 }

// get looks key up; ok is false on a miss.
func (c *seriesCache) get(key []byte, h uint64) (typeUnknown uint64, ok bool) {
	sh := &c.shards[h%seriesCacheShards]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.slots == nil {
		return 0, false
	}
	for i := (h >> 4) % seriesCacheSlots; ; i = (i + 1) % seriesCacheSlots {
		s := &sh.slots[i]
		if s.h == 0 {
			return 0, false
		}
		if s.h == h && bytes.Equal(sh.arena[s.off:s.off+s.len], key) {
			return s.typeUnknown, true
		}
	}
}

// add remembers key with its type-unknown rule bits.
func (c *seriesCache) add(key []byte, h uint64, typeUnknown uint64) {
	if len(key) > seriesCacheMaxKey {
		return
	}
	sh := &c.shards[h%seriesCacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.slots == nil {
		sh.slots = make([]seriesSlot, seriesCacheSlots)
		sh.arena = make([]byte, 0, seriesCacheArena)
	}
	if sh.used >= seriesCacheSlots/2 || len(sh.arena)+len(key) > cap(sh.arena) {
		clear(sh.slots)
		sh.arena = sh.arena[:0]
		sh.used = 0
	}
	for i := (h >> 4) % seriesCacheSlots; ; i = (i + 1) % seriesCacheSlots {
		s := &sh.slots[i]
		if s.h == h && bytes.Equal(sh.arena[s.off:s.off+s.len], key) {
			return // added concurrently
		}
		if s.h == 0 {
			off := len(sh.arena)
			sh.arena = append(sh.arena, key...)
			*s = seriesSlot{h: h, off: uint32(off), len: uint32(len(key)), typeUnknown: typeUnknown}
			sh.used++
			return
		}
	}
}

// replayTypeUnknown counts the skipped type checks remembered for a series.
func (e *Engine) replayTypeUnknown(mask uint64) {
	for mask != 0 {
		i := bits.TrailingZeros64(mask)
		e.rules[i].metrics.typeUnknown.inc()
		mask &^= 1 << i
	}
}
