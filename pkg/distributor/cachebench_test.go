package distributor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/promgov/promgov/pkg/record"
)

func BenchmarkSeriesCacheGet(b *testing.B) {
	for _, tc := range []struct {
		n   int
		seq bool
	}{{1000, false}, {100_000, false}, {100_000, true}} {
		n, seq := tc.n, tc.seq
		b.Run(fmt.Sprintf("%d/in_order=%v", n, seq), func(b *testing.B) {
			c := newSeriesCache(DefaultSeriesCacheBytes)
			g := c.acquire(nil)
			keys := make([][]byte, n)
			out := record.AppendLabel(record.AppendLabel(nil, "__name__", "loadgen_metric_123_total"), "job", "loadgen")
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "anonymous\xff\x0a\x20\x0a\x08__name__\x12\x18loadgen_metric_%03d_total\x0a\x0a\x0a\x06series\x12\x02%02d", i%1000, i)
				v := cacheValue{out: out}
				g.put(g.hashKey(keys[i]), &v)
			}
			order := rand.Perm(n)
			if seq {
				for i := range order {
					order[i] = i
				}
			}
			var v cacheValue
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := keys[order[i%n]]
				if !g.get(g.hashKey(k), &v) {
					b.Fatal("miss")
				}
			}
		})
	}
}
