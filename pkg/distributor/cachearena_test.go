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
// key number from on, until it is full; it returns the next key number.
func fillGen(t *testing.T, c *seriesCache, from int) int {
	t.Helper()
	for i := from; ; i++ {
		g := c.acquire(nil)
		v := testCacheValue(i)
		g.put(g.hashKey(testCacheKey(i)), &v)
		full := g.full.Load()
		g.release()
		if full {
			return i + 1
		}
		require.Less(t, i-from, 1_000_000, "the generation never filled")
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
