package usage

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// BenchmarkAccessRecordQuery is the query tap's bookkeeping per query (the
// PromQL extraction is measured by the promqlx benchmarks): one query
// reading two metrics by two labels, over 1,000 distinct metrics.
func BenchmarkAccessRecordQuery(b *testing.B) {
	refs := make([]*promqlx.Refs, 1000)
	for i := range refs {
		r, err := promqlx.Extract(`sum by (job) (rate(a_` + strconv.Itoa(i) + `[5m])) / sum by (job, code) (rate(b_` + strconv.Itoa(i) + `[5m]))`)
		require.NoError(b, err)
		refs[i] = r
	}
	s := NewAccessStats(1_000_000, 100)
	at := time.Unix(1700000000, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.RecordQuery("t", refs[i%len(refs)], "alice", at)
		i++
	}
}
