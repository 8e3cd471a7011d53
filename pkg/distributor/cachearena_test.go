package distributor

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
)

// fillGen puts distinct series into the cache's current generation, from
// key number from on, until it is full, and then looks up more distinct
// series until it no longer pays; it returns the next key number.
func fillGen(t *testing.T, c *seriesCache, from int) int {
	t.Helper()
	for i := from; ; i++ {
		g := c.acquire(nil)
		v := testCacheValue(i)
		g.put(g.hashKey(testCacheKey(i)), &v)
		g.record(1, 0)
		stale := g.use.stale.Load()
		g.release()
		if stale {
			return i + 1
		}
		require.Less(t, i-from, 1_000_000, "the generation never gave way")
	}
}

func testCacheKey(i int) []byte { return fmt.Appendf(nil, "t\xff%08d-labels-as-sent", i) }

// testCacheValue is a value whose every byte follows from i, so that a
// value overwritten under a reader shows.
func testCacheValue(i int) cacheValue {
	out := record.AppendLabel(record.AppendLabel(nil, "__name__", "m"), "series", fmt.Sprintf("%08d", i))
	off, n, _ := record.FindLabel(out, "__name__")
	return cacheValue{out: out, nameOff: off, nameLen: n, outHash: uint64(i), msg: fmt.Appendf(nil, "drop %d", i)}
}

// TestCacheGenerationsReuseChunks: a cache that fills again and again
// (more series than it holds) maps its chunks once and reuses them.
func TestCacheGenerationsReuseChunks(t *testing.T) {
	const maxBytes = 4 * cacheChunkSize
	c := newSeriesCache(maxBytes)
	next := 0
	for range 10 {
		next = fillGen(t, c, next)
	}
	c.pool.mu.Lock()
	mapped := len(c.pool.mapped)
	c.pool.mu.Unlock()
	assert.LessOrEqual(t, mapped, c.pool.max, "mapped chunks stay bounded")
	assert.LessOrEqual(t, mapped, 5, "ten generations of four chunks map about four")
	g := c.acquire(nil) // a new generation, on reused chunks
	defer g.release()
	v := testCacheValue(next)
	g.put(g.hashKey(testCacheKey(next)), &v)
	var got cacheValue
	require.True(t, g.get(g.hashKey(testCacheKey(next)), &got))
	assert.Equal(t, v.out, got.out)
}

// TestRetiredGenerationReadableUntilReleased: a request holding a
// generation that ended meanwhile still reads its values intact while
// the next generation fills; its chunks go back to the pool only when it
// lets go.
func TestRetiredGenerationReadableUntilReleased(t *testing.T) {
	const maxBytes = 2 * cacheChunkSize
	c := newSeriesCache(maxBytes)
	held := c.acquire(nil)
	v := testCacheValue(0)
	held.put(held.hashKey(testCacheKey(0)), &v)
	var got cacheValue
	require.True(t, held.get(held.hashKey(testCacheKey(0)), &got))

	next := fillGen(t, c, 1) // fills held's generation
	// The next generation ends held's; while held is read, it gets only
	// the pool's slack, so it refuses what does not fit instead of
	// taking held's chunks or mapping more.
	for i := next; i < next+20_000; i++ {
		g := c.acquire(nil)
		v := testCacheValue(i)
		g.put(g.hashKey(testCacheKey(i)), &v)
		g.release()
	}
	require.True(t, held.retired.Load())
	assert.False(t, held.recycled.Load(), "chunks of a held generation are not handed on")
	c.pool.mu.Lock()
	assert.Equal(t, c.pool.max, len(c.pool.mapped), "the slack is used, no more")
	c.pool.mu.Unlock()
	want := testCacheValue(0)
	assert.Equal(t, want.out, got.out, "a value read before the generation ended is intact")
	assert.Equal(t, want.msg, got.msg)

	c.pool.mu.Lock()
	free := len(c.pool.free)
	c.pool.mu.Unlock()
	held.release()
	assert.True(t, held.recycled.Load())
	c.pool.mu.Lock()
	assert.Equal(t, free+2, len(c.pool.free), "its two chunks are back")
	c.pool.mu.Unlock()
}

// TestCacheChurnUnderConcurrency: many requests look up and put while
// generations fill and end; every value found is the one put for its
// key, whole (run with -race: a chunk handed on while read would show
// as a torn or foreign value, or a race report).
func TestCacheChurnUnderConcurrency(t *testing.T) {
	const maxBytes = 2 * cacheChunkSize
	c := newSeriesCache(maxBytes)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var got cacheValue
			for i := range 20_000 {
				k := (i*7 + w*13) % 30_000
				g := c.acquire(nil)
				key := g.hashKey(testCacheKey(k))
				if g.get(key, &got) {
					want := testCacheValue(k)
					if got.outHash != want.outHash || !bytes.Equal(got.out, want.out) || !bytes.Equal(got.msg, want.msg) {
						t.Errorf("key %d: found %d %q %q", k, got.outHash, got.out, got.msg)
					}
				} else {
					v := testCacheValue(k)
					g.put(key, &v)
				}
				g.release()
			}
		})
	}
	wg.Wait()
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	assert.LessOrEqual(t, len(c.pool.mapped), c.pool.max)
}

// cycle looks keys up in order, through the cache as a request would
// (a miss is put), and returns the hits.
func cycle(c *seriesCache, keys []int) (hits int) {
	var got cacheValue
	for _, k := range keys {
		g := c.acquire(nil)
		key := g.hashKey(testCacheKey(k))
		hit := g.get(key, &got)
		if hit {
			hits++
		} else {
			v := testCacheValue(k)
			g.put(key, &v)
		}
		g.record(1, btoi(hit))
		g.release()
	}
	return hits
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func seq(from, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = from + i
	}
	return s
}

// TestFullGenerationKeptWhileItPays: a sender cycling through three times
// the series the cache holds still hits about a third of them (a cache
// that started over whenever it filled would hit none); when the series
// sent change, the full generation gives way and the new series are
// remembered.
func TestFullGenerationKeptWhileItPays(t *testing.T) {
	c := newSeriesCache(2 * cacheChunkSize)
	g := c.acquire(nil)
	for i := 0; !g.full.Load(); i++ { // how many test values a generation holds
		v := testCacheValue(i)
		g.put(g.hashKey(testCacheKey(i)), &v)
	}
	capacity := int(g.use.entries.Load())
	g.use.stale.Store(true) // an empty cache for the test
	g.release()
	require.Greater(t, capacity, 1000)

	keys := seq(1_000_000, 3*capacity)
	for range 3 {
		cycle(c, keys)
	}
	hits := cycle(c, keys)
	ratio := float64(hits) / float64(len(keys))
	assert.InDelta(t, 1.0/3, ratio, 0.05, "a third of a cycle three times the cache hits (%d of %d)", hits, len(keys))

	// The sender's series change: the new ones come to be remembered.
	fresh := seq(5_000_000, capacity/2)
	for range 20 {
		cycle(c, fresh)
	}
	assert.Equal(t, len(fresh), cycle(c, fresh), "the new series are all remembered")
}
