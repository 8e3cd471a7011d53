package distributor

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin/plugintest"
	"github.com/promgov/promgov/pkg/rules"
)

// pluginRulesDoc is a ruleset mixing relabel, labels and naming rules with
// the two example plugins (built into dir's builder).
func pluginRulesDoc(t *testing.T, b *plugintest.Builder) string {
	requireTeam := b.Build(t, "../../examples/plugins/requireteam")
	costCenter := b.Build(t, "../../examples/plugins/costcenter")
	return fmt.Sprintf(`
rules:
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
  - name: owner-is-team
    relabel_configs:
      - source_labels: [owner]
        regex: "(.+)"
        target_label: team
  - name: requireteam
    plugin:
      module: %q
      timeout: 30s
      config: '{"teams": ["core", "edge"], "action": "tag"}'
  - name: counters-total
    mode: shadow
    action: tag
    naming: {type_suffixes: true}
  - name: costcenter
    scope: {selector: '{job=~"api.*"}'}
    plugin:
      module: %q
      timeout: 30s
      config: '{"mapping": {"payments": "cc-42"}}'
  - name: needs-env
    action: drop
    labels: {required: [env]}
`, requireTeam, costCenter)
}

// TestBatchedRulesForwardTheSame: a request of many first-sight series
// (more than one batch) is forwarded, counted and answered the same
// whether the distributor resolves its series in batches (the plugins
// asked once per batch) or one at a time, and so is its repeat.
func TestBatchedRulesForwardTheSame(t *testing.T) {
	b := plugintest.NewBuilder(t.TempDir())
	doc := pluginRulesDoc(t, b)
	var series []prompb.TimeSeries
	for i := range 700 {
		pod := fmt.Sprint("p", i)
		switch i % 7 {
		case 0:
			series = append(series, v1Series("http_requests_total", "job", "api", "team", "core", "env", "prod", "namespace", "payments", "pod", pod))
		case 1:
			series = append(series, v1Series("http_requests_total", "job", "api", "team", "nope", "env", "prod", "pod", pod))
		case 2:
			series = append(series, v1Series("debug_queue", "job", "api", "env", "prod", "pod", pod))
		case 3:
			series = append(series, v1Series("queue_length", "job", "worker", "owner", "edge", "env", "prod", "pod", pod))
		case 4:
			series = append(series, v1Series("queue_length", "job", "worker", "owner", "edge", "pod", pod))
		case 5:
			s := v1Series("rpc_latency", "job", "api-gw", "team", "edge", "env", "dev", "namespace", "payments", "pod", pod)
			s.Histograms = []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, Timestamp: 1000}}
			series = append(series, s)
		default:
			series = append(series, v1Series("up", "job", "api", "owner", "core", "env", "prod", "pod", pod))
		}
	}
	meta := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "queue_length"}}
	body := v1Body(t, &prompb.WriteRequest{Timeseries: series, Metadata: meta})

	type outcome struct {
		forwarded     []string
		written, code string
		ruleCounters  string
		pluginCalls   float64
	}
	run := func(perSeries bool) []outcome {
		c := newTestCluster(t, 3, 5*time.Second)
		cfg, err := rules.LoadConfig([]byte(doc))
		require.NoError(t, err)
		reg := prometheus.NewRegistry()
		m := rules.NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
		t.Cleanup(func() { require.NoError(t, m.Close(t.Context())) })
		require.NoError(t, m.Reload(cfg))
		c.with(func(d *Deps) { d.Rules, d.Types = m, rules.NewTypeCache(100) })
		c.dist.perSeriesRules = perSeries
		var outs []outcome
		for range 2 { // first sight, then the repeat (the series cache)
			w := post(t, c.dist, "application/x-protobuf", body, "team-a")
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			o := outcome{
				forwarded: received(t, c, "team-a"),
				written:   w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"),
				code:      fmt.Sprint(w.Code),
			}
			for _, r := range c.recorders {
				r.mu.Lock()
				r.batches = nil
				r.mu.Unlock()
			}
			mfs, err := reg.Gather()
			require.NoError(t, err)
			var lines []string
			for _, mf := range mfs {
				if strings.HasPrefix(mf.GetName(), "promgov_rule_") {
					for _, met := range mf.GetMetric() {
						lines = append(lines, fmt.Sprint(met.GetLabel(), met.GetCounter().GetValue()))
					}
				}
			}
			o.ruleCounters = strings.Join(lines, "\n")
			o.pluginCalls = okCalls(t, reg, "requireteam")
			outs = append(outs, o)
		}
		return outs
	}
	one, many := run(true), run(false)
	require.Len(t, one[0].forwarded, 700-100-100+100) // debug and env-less dropped; histograms split
	for i := range one {
		require.Equal(t, one[i].forwarded, many[i].forwarded, "request %d", i)
		require.Equal(t, one[i].written, many[i].written, "request %d", i)
		require.Equal(t, one[i].ruleCounters, many[i].ruleCounters, "request %d", i)
	}
	// 800 decoded series (the histograms split), 700 of them past
	// drop-debug: one requireteam call per series one at a time, one per
	// batch of at most 512 decoded series otherwise.
	t.Logf("requireteam calls: one at a time %v, batched %v", one[0].pluginCalls, many[0].pluginCalls)
	require.Equal(t, 2.0, many[0].pluginCalls)
	require.Equal(t, 700.0, one[0].pluginCalls)
}

// okCalls returns promgov_plugin_calls_total{plugin=plugin, outcome="ok"}
// in reg.
func okCalls(t *testing.T, reg *prometheus.Registry, plugin string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "promgov_plugin_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var p, ok bool
			for _, l := range m.GetLabel() {
				p = p || (l.GetName() == "plugin" && l.GetValue() == plugin)
				ok = ok || (l.GetName() == "outcome" && l.GetValue() == "ok")
			}
			if p && ok {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("promgov_plugin_calls_total{plugin=%q} not found", plugin)
	return 0
}

// TestBatchedRepeatDoesNotAllocate: a batch of series the engine has seen
// (its cache answers them) goes through governor.applyBatch without
// allocating, like applyRecorded.
func TestBatchedRepeatDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("-race makes sync.Pool drop items: allocation counts are meaningless")
	}
	b := plugintest.NewBuilder(t.TempDir())
	cfg, err := rules.LoadConfig([]byte(pluginRulesDoc(t, b)))
	require.NoError(t, err)
	eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(t.Context())) })
	require.True(t, eng.HasBatchStages())
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	chunk := make([]int, 300)
	for i := range chunk {
		chunk[i] = i
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "up", "env", "prod", "job", "api",
				"pod", fmt.Sprint("p", i), "team", "core"), nil),
		})
	}
	req.Symbols = st.Symbols()
	var pool governorPool
	g := pool.get()
	types := rules.NewTypeCache(10)
	res, _ := g.applyBatch(eng, types, eng.UsesMetadata(), "team-a", req, chunk)
	for _, r := range res {
		require.Equal(t, rules.Kept, r.Action, r.Reason)
	}
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = g.applyBatch(eng, types, eng.UsesMetadata(), "team-a", req, chunk)
	})
	require.Zero(t, allocs)
}
