package rules

import (
	"fmt"
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func loadRealistic(b testing.TB) *Engine {
	data, err := os.ReadFile("testdata/realistic.yaml")
	require.NoError(b, err)
	cfg, err := LoadConfig(data)
	require.NoError(b, err)
	e, err := Compile(cfg, NewMetrics(nil))
	require.NoError(b, err)
	return e
}

// untouched is a typical series no rule of the realistic set touches.
const untouched = `http_requests_total{job="api-server", instance="10.0.0.1:9090", method="GET", code="200", path="/api/users", env="prod", team="core"}`

func BenchmarkApply(b *testing.B) {
	empty, err := Compile(DefaultConfig(), nil)
	require.NoError(b, err)
	realistic := loadRealistic(b)
	cases := []struct {
		name   string
		engine *Engine
		series string
		typ    string
		want   Outcome
	}{
		{"no_rules", empty, untouched, "counter", Kept},
		{"realistic/untouched", realistic, untouched, "counter", Kept},
		{"realistic/untouched_type_unknown", realistic, untouched, "", Kept},
		{"realistic/path_normalised", realistic, `http_requests_total{job="api-server", instance="10.0.0.1:9090", method="GET", code="200", path="/api/users/12345/orders/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c", env="prod", team="core"}`, "counter", Changed},
		{"realistic/dropped_by_relabel", realistic, `debug_queue_length{job="worker", env="prod", team="core"}`, "gauge", Dropped},
		{"realistic/dropped_multi_source", realistic, `queue_length{job="worker", env="dev", team="core"}`, "gauge", Dropped},
	}
	for _, c := range cases {
		s := series(b, "team-a", c.series, c.typ)
		require.Equal(b, c.want, c.engine.Apply(s, nil).Action, c.name)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.engine.Apply(s, nil)
			}
		})
	}
}

// BenchmarkDecodeRW2PerSeries measures the decode cost the distributor pays
// per series (unmarshal a 1000-series RW 2.0 request and build each series'
// labels), as a yardstick for the rules cost.
func BenchmarkDecodeRW2PerSeries(b *testing.B) {
	const n = 1000
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := range n {
		ls := labels.FromStrings("__name__", fmt.Sprintf("metric_%d_total", i%50), "job", "api-server",
			"instance", fmt.Sprintf("10.0.%d.%d:9090", i/250, i%250), "method", "GET", "code", "200",
			"path", "/api/users", "env", "prod", "team", "core")
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: 1}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		})
	}
	req.Symbols = st.Symbols()
	raw, err := req.Marshal()
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	sb := labels.NewScratchBuilder(16)
	for b.Loop() {
		var r writev2.Request
		if err := r.Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
		for i := range r.Timeseries {
			if _, err := r.Timeseries[i].ToLabels(&sb, r.Symbols); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/series")
}

// BenchmarkApplyPerRule measures each rule of the realistic set alone on
// the untouched series, to show what a rule costs.
func BenchmarkApplyPerRule(b *testing.B) {
	full := loadRealistic(b)
	s := series(b, "team-a", untouched, "counter")
	for _, rc := range full.cfg.Rules {
		cfg := DefaultConfig()
		cfg.Rules = []RuleConfig{rc}
		e, err := Compile(cfg, nil)
		require.NoError(b, err)
		b.Run(rc.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.Apply(s, nil)
			}
		})
	}
}

// BenchmarkRelabelDirect runs the relabel configs of the realistic set
// straight through relabel.ProcessBuilder (no scopes), for comparison with
// the engine's pre-checked evaluation.
func BenchmarkRelabelDirect(b *testing.B) {
	e := loadRealistic(b)
	var cfgs []*relabel.Config
	for _, r := range e.rules {
		for _, st := range r.relabel {
			cfgs = append(cfgs, st.cfg)
		}
	}
	s := series(b, "team-a", untouched, "counter")
	lb := labels.NewBuilder(labels.EmptyLabels())
	b.ReportAllocs()
	for b.Loop() {
		lb.Reset(s.Labels)
		if !relabel.ProcessBuilder(lb, cfgs...) {
			b.Fatal("dropped")
		}
		_ = lb.Labels()
	}
}

// BenchmarkApplyCold is BenchmarkApply/realistic/untouched on series the
// engine has not seen recently: 65,536 distinct series in turn, more than
// the series cache holds, so every Apply evaluates the rules (and tries to
// remember the series). This is the cost of a series' first sighting and
// of high churn; steady re-sends cost what BenchmarkApply shows.
func BenchmarkApplyCold(b *testing.B) {
	e := loadRealistic(b)
	const n = 1 << 16
	in := make([]Series, n)
	for i := range in {
		ls := labels.FromStrings("__name__", fmt.Sprintf("http_requests_%d_total", i%50), "job", "api-server",
			"instance", fmt.Sprintf("10.%d.%d.%d:9090", i>>16, (i>>8)&255, i&255), "method", "GET", "code", "200",
			"path", "/api/users", "env", "prod", "team", "core")
		in[i] = Series{Tenant: "team-a", Labels: ls, Meta: Metadata{Type: "counter"}}
	}
	require.Equal(b, Kept, e.Apply(&in[0], nil).Action)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = e.Apply(&in[i%n], nil)
		i++
	}
}
