package rules

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

// BenchmarkPluginRuleBatch: a rule of kind plugin (the requireteam
// example) against the same check compiled in, through ApplyBatch with
// batches of 1, 100 and 500 series, on first sight (every series new: the
// plugin is asked) and on repeat (the engine's cache answers). ns/series
// is the time per series; allocs/op is per batch (first sight includes the
// one allocation per series of building its new labels).
func BenchmarkPluginRuleBatch(b *testing.B) {
	const teams = `{"teams": ["core", "edge"]}`
	compiled := `
rules:
  - name: requireteam
    action: drop
    labels: {required: [team]}
`
	for _, bc := range []struct{ name, doc string }{
		{"plugin", pluginRules(b, "requireteam", "enforce", teams, "")},
		{"compiled-in", compiled},
	} {
		e := compileYAML(b, bc.doc)
		for _, size := range []int{1, 100, 500} {
			base := series(b, "team-a", `http_requests_total{job="api", instance="10.0.0.1:9090", team="core", pod="p"}`, "counter")
			ss := make([]Series, size)
			for i := range ss {
				ss[i] = *base
			}
			out := make([]Result, size)
			b.Run(fmt.Sprintf("%s/first-sight/batch=%d", bc.name, size), func(b *testing.B) {
				b.ReportAllocs()
				lb := labels.NewBuilder(base.Labels)
				n := 0
				for b.Loop() {
					for i := range ss {
						lb.Set("pod", strconv.Itoa(n))
						n++
						ss[i].Labels = lb.Labels()
					}
					e.ApplyBatch(ss, out)
					if out[0].Action != Kept {
						b.Fatal(out[0].Reason)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/series")
			})
			for i := range ss {
				ss[i].Labels = labels.NewBuilder(base.Labels).Set("pod", "r"+strconv.Itoa(i)).Labels()
			}
			e.ApplyBatch(ss, out) // remembered from now on
			b.Run(fmt.Sprintf("%s/repeat/batch=%d", bc.name, size), func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					e.ApplyBatch(ss, out)
					n += size
				}
				if out[0].Action != Kept {
					b.Fatal(out[0].Reason)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/series")
			})
		}
		require.NoError(b, e.Close(context.Background()))
	}
}
