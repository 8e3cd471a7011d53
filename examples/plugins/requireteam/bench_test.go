package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin"
	"github.com/promgov/promgov/pkg/plugin/sdk"
)

const benchConfig = `{"teams": ["core", "payments", "search", "checkout", "platform"]}`

// benchInputs: a realistic series, half of them from a known team.
func benchInputs(n int) []plugin.Input {
	in := make([]plugin.Input, n)
	for i := range in {
		team := "core"
		if i%2 == 1 {
			team = "marketing"
		}
		in[i] = plugin.Input{Tenant: "tenant-1", Type: model.MetricTypeCounter, Labels: labels.FromStrings(
			"__name__", "http_requests_total", "job", "api-server", "instance", fmt.Sprintf("10.0.0.%d:9090", i%250),
			"method", "GET", "code", "200", "path", "/api/users", "env", "prod", "team", team)}
	}
	return in
}

// BenchmarkRequireTeam: ns per series of the example plugin through the
// WebAssembly host (encode, call, decode), against the same logic compiled
// in: "go/labels" as a built-in stage would run it on labels.Labels,
// "go/sdk" the plugin's own evaluate function called directly.
func BenchmarkRequireTeam(b *testing.B) {
	var pol policy
	require.NoError(b, pol.configure([]byte(benchConfig)))
	teams := map[string]struct{}{}
	for _, t := range []string{"core", "payments", "search", "checkout", "platform"} {
		teams[t] = struct{}{}
	}
	for _, n := range []int{1, 100} {
		in := benchInputs(n)
		b.Run(fmt.Sprintf("wasm/batch=%d", n), func(b *testing.B) {
			p := load(b, benchConfig)
			var out []plugin.Verdict
			b.ReportAllocs()
			for b.Loop() {
				var err error
				out, err = p.Eval(context.Background(), in, out)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
		b.Run(fmt.Sprintf("go/labels/batch=%d", n), func(b *testing.B) {
			out := make([]plugin.Verdict, 0, n)
			b.ReportAllocs()
			for b.Loop() {
				out = out[:0]
				for i := range in {
					team := in[i].Labels.Get("team")
					if _, ok := teams[team]; ok {
						out = append(out, plugin.Verdict{Action: plugin.Keep})
					} else {
						out = append(out, plugin.Verdict{Action: plugin.Drop, Reason: "team " + team + " is not a known team"})
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
		b.Run(fmt.Sprintf("go/sdk/batch=%d", n), func(b *testing.B) {
			series := make([]sdk.Series, n)
			for i := range in {
				series[i] = toSeries(in[i].Tenant, in[i].Labels)
			}
			b.ReportAllocs()
			for b.Loop() {
				for i := range series {
					_ = pol.evaluate(series[i])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/series")
		})
	}
}
