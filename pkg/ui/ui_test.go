package ui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testRules = `
rules:
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
`

// hostile is a label value and a metric name that are HTML.
const hostile = `<script>alert(1)</script>`

// usageReader serves a fixed classification (usage.Classify's) through
// the usage.Reader interface.
type usageReader struct {
	rep    *usage.Report
	policy *usage.Policy
}

func (u *usageReader) Report() *usage.Report         { return u.rep }
func (u *usageReader) Sources() []usage.SourceStatus { return nil }
func (u *usageReader) Policy() *usage.Policy         { return u.policy }

// testCluster is a distributor's UI over real components: a cardinality
// tracker fed nMetrics metrics (metric 0 has the most series), the rules
// manager, a ring member, the usage classification of the metrics, and
// the APIs on one mux.
type testCluster struct {
	mux     *http.ServeMux
	ui      *UI
	tracker *cardinality.Tracker
	hist    *History
	store   *govstore.Store
}

func newTestCluster(tb testing.TB, nMetrics int) *testCluster {
	tb.Helper()
	reg := prometheus.NewRegistry()
	cc := cardinality.DefaultConfig()
	tr, err := cardinality.New(cc, cardinality.Options{Registerer: reg})
	require.NoError(tb, err)
	now := time.Now()
	var costs []usage.MetricCost
	for i := range nMetrics {
		name := fmt.Sprintf("metric_%06d_total", i)
		series := 1
		if i == 0 {
			name, series = "exploding_total", 500
		}
		if i == 1 {
			name = "evil_" + hostile
		}
		for j := range series {
			ls := labels.FromStrings(model.MetricNameLabel, name, "id", strconv.Itoa(j), "path", hostile)
			tr.Observe(&cardinality.Series{Tenant: "team-a", Metric: name, Labels: ls, Samples: 1, Bytes: 100}, now)
		}
		costs = append(costs, usage.MetricCost{Name: name, Series: uint64(series), SamplesRate: float64(series)})
	}
	rm := rules.NewManager(nil, reg)
	rcfg, err := rules.LoadConfig([]byte(testRules))
	require.NoError(tb, err)
	require.NoError(tb, rm.Reload(rcfg))
	rcfgRing := ring.DefaultConfig()
	rcfgRing.BindAddress, rcfgRing.NodeName = "127.0.0.1:0", "dist-1"
	rg, err := ring.New(rcfgRing, ring.RoleDistributor, "", nil, nil)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rg.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	policy, err := usage.NewPolicy(usage.DropConfig{}, nil)
	require.NoError(tb, err)

	mux := http.NewServeMux()
	mux.Handle("GET "+cardinality.PathPrefix, cardinality.NewHandler(tr, "X-Scope-OrgID", nil))
	mux.Handle("GET "+rules.PathRules, rules.RulesHandler(rm))
	agg, err := aggregate.New(aggregate.Config{Rules: []aggregate.RuleConfig{{Name: "by-service", Match: "agg_requests_total",
		Without: []string{"pod"}, Interval: model.Duration(30 * time.Second)}}}, nil, nil)
	require.NoError(tb, err)
	mux.Handle("POST "+rules.PathTest, rules.TestHandlerWithAggregations(rm, agg, nil))
	mux.Handle("GET "+aggregate.PathMetrics, aggregate.Handler(func(context.Context, string) ([]aggregate.MetricStats, error) {
		return []aggregate.MetricStats{
			{Rule: "by-service", Tenant: "team-a", Metric: "agg_requests_total", InputSeries: 5, OutputSeries: 2},
			{Rule: "by-service", Tenant: "team-b", Metric: "agg_requests_total", InputSeries: 5, OutputSeries: 2},
			{Rule: "latency", Tenant: "team-a", Metric: "evil_" + hostile, InputSeries: 10, OutputSeries: 1},
		}, nil
	}, "X-Scope-OrgID"))
	bkt, err := filesystem.NewBucket(tb.TempDir())
	require.NoError(tb, err)
	store := govstore.New(bkt)
	govapi.New(store, rolloutStub{}, 5*time.Second, slog.New(slog.DiscardHandler)).Register(mux)
	jobs := newTestJobs(tb, 20)
	jobs.Register(mux)
	rep := usage.Classify(nil, usage.AccessSnapshot{}, costs, now)
	mux.Handle("GET "+usage.PathPrefix, usage.NewAPI(&usageReader{rep: rep, policy: policy}, "X-Scope-OrgID"))
	rg.RegisterRoutes(mux)
	hcfg := DefaultConfig()
	hist := NewHistory(hcfg, tr, reg, nil)
	hist.Sample(context.Background(), now.Add(-time.Minute))
	hist.Sample(context.Background(), now)
	u, err := New(Deps{Role: RoleDistributor, Node: "dist-1", API: mux, TenantHeader: "X-Scope-OrgID", Gatherer: reg, Cardinality: tr, Governance: true,
		Usage: &usageReader{rep: rep, policy: policy}, History: hist})
	require.NoError(tb, err)
	u.Register(mux)
	return &testCluster{mux: mux, ui: u, tracker: tr, hist: hist, store: store}
}

func (c *testCluster) get(tb testing.TB, path string) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	c.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	require.Equal(tb, http.StatusOK, rec.Code, "GET %s: %s", path, body)
	require.Equal(tb, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Contains(tb, rec.Header().Get("Content-Security-Policy"), "script-src 'self'")
	return string(body)
}

func TestPages(t *testing.T) {
	c := newTestCluster(t, 50)
	metric := func(name string, extra url.Values) string {
		v := url.Values{"name": {name}}
		for k, vs := range extra {
			v[k] = vs
		}
		return PathMetric + "?" + v.Encode()
	}
	for name, tc := range map[string]struct {
		path string
		want []string
	}{
		"overview":           {"/", []string{"Cluster health", "dist-1", "exploding_total", "team-a", "active ruleset", "ingest rate", "Nothing refused or dropped over the history."}},
		"offenders":          {PathOffenders, []string{`<a href="/ui/metric?name=exploding_total&amp;tenant=team-a">exploding_total</a>`, "evil_&lt;script&gt;"}},
		"offenders filtered": {PathOffenders + "?filter=000049", []string{"metric_000049_total", "1 metrics"}},
		"metric":             {metric("exploding_total", nil), []string{"Distinct values per label", "500 values", "drop-debug", "Who reads it", "unused"}},
		"trace":              {metric("debug_x", url.Values{"series": {`debug_x{job="a"}`}}), []string{`<strong class="outcome">dropped</strong>`, "drop-debug", `matched regex &#34;debug_.*&#34;`}},
		"usage":              {PathUsage + "?state=unused", []string{"exploding_total", "<circle"}},
		"rules":              {PathRules, []string{"drop-debug", "relabel", "What each suggestion would save", "<td>drop_metrics</td>", `<a href="/ui/metric?name=exploding_total">exploding_total</a>`, "source_labels:"}},
		"static js":          {PathStatic + "ui.js", []string{"textContent"}},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
			body := rec.Body.String()
			for _, w := range tc.want {
				require.Contains(t, body, w)
			}
			require.NotContains(t, body, hostile, "attacker-controlled text must be escaped")
		})
	}
}

// TestHostileLabelValueIsEscaped checks a trace of a series whose label
// value is HTML: it is shown, escaped, never as markup.
func TestHostileLabelValueIsEscaped(t *testing.T) {
	c := newTestCluster(t, 5)
	body := c.get(t, PathMetric+"?"+url.Values{"name": {"x"}, "series": {`x{path="` + hostile + `"}`}}.Encode())
	require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.NotContains(t, body, hostile)
	require.Equal(t, 1, strings.Count(body, "<script"), "only the UI's own script tag")
}

func TestTracesDoNotCountAsTraffic(t *testing.T) {
	c := newTestCluster(t, 5)
	before := RuleCounters(c.ui.d.Gatherer)["drop-debug"]["drop/enforce"]
	c.get(t, PathMetric+"?"+url.Values{"name": {"debug_x"}, "series": {`debug_x{job="a"}`}}.Encode())
	require.Equal(t, before, RuleCounters(c.ui.d.Gatherer)["drop-debug"]["drop/enforce"])
}

func TestHistoryIsBounded(t *testing.T) {
	c := newTestCluster(t, 10)
	cfg := Config{Enabled: true, HistoryInterval: time.Second, HistoryMetrics: 3, HistoryPoints: 4, SnapshotInterval: time.Second}
	h := NewHistory(cfg, c.tracker, prometheus.NewRegistry(), nil)
	t0 := time.Now()
	for i := range 10 {
		h.Sample(context.Background(), t0.Add(time.Duration(i)*time.Second))
	}
	s, ok := h.Metric("team-a", "exploding_total")
	require.True(t, ok)
	require.Len(t, s.Times, 4, "the oldest points are overwritten")
	require.Equal(t, 500.0, s.Series[3])
	require.LessOrEqual(t, len(h.tracks), 2*cfg.HistoryMetrics)
	_, ok = h.Metric("team-a", "metric_000009_total")
	require.False(t, ok, "only the top metrics are kept")
}

// BenchmarkPages renders each page over 100k tracked metrics (one tenant,
// metric 0 with 500 series) through the real APIs in-process.
func BenchmarkPages(b *testing.B) {
	c := newTestCluster(b, 100_000)
	c.proposal(b)
	for name, path := range map[string]string{
		"overview":         "/",
		"offenders":        PathOffenders,
		"offenders_sort":   PathOffenders + "?sort=samples_rate",
		"offenders_filter": PathOffenders + "?filter=metric_0999",
		"metric":           PathMetric + "?name=exploding_total",
		"metric_trace":     PathMetric + "?" + url.Values{"name": {"exploding_total"}, "series": {`exploding_total{id="1"}`}}.Encode(),
		"usage":            PathUsage,
		"rules":            PathRules,
		"jobs":             PathJobs,
		"job":              PathJobs + "/" + testJobExec,
		"job_dry_run":      PathJobs + "/" + testJobDry,
		"config_proposal":  PathConfig,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			// Steady state: what History.Run computes in the background
			// (the snapshot, the usage views and suggestions; measured by
			// BenchmarkSnapshotRefresh and BenchmarkReportView) is done.
			c.hist.refresh(context.Background())
			// The machine is shared: CPU time per page is reported beside
			// the wall time (ns/op), which waits for other processes.
			cpu0 := processCPU(b)
			for b.Loop() {
				rec := httptest.NewRecorder()
				c.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkReportView is the background cost of a new usage
// classification of 100k metrics for the pages: the order by series and
// the suggestions.
func BenchmarkReportView(b *testing.B) {
	c := newTestCluster(b, 100_000)
	rep := c.ui.d.Usage.Report()
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		newReportView(rep).suggestions(0)
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// processCPU is the process's user+system CPU time.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// nodeList is a fixed NodeSource: the ingesters' status as the RPC would
// answer it (a fake only to set the counters each tick).
type nodeList struct{ nodes []NodeStatus }

func (n *nodeList) Nodes(context.Context) []NodeStatus { return n.nodes }

// TestHistoryRefusedRate checks the refused/dropped rate by reason: this
// node's counters plus every ingester's, per second between ticks, with a
// counter reset (restart) and a node missing from a tick adding nothing.
func TestHistoryRefusedRate(t *testing.T) {
	reg := prometheus.NewRegistry()
	invalid := prometheus.NewCounter(prometheus.CounterOpts{Name: "promgov_distributor_invalid_series_total"})
	reg.MustRegister(invalid)
	c := newTestCluster(t, 3)
	cfg := Config{Enabled: true, HistoryInterval: 10 * time.Second, HistoryMetrics: 3, HistoryPoints: 5, SnapshotInterval: time.Second}
	h := NewHistory(cfg, c.tracker, reg, nil)
	nodes := &nodeList{}
	h.useNodes(nodes)
	limit := func(node string, v float64) NodeStatus {
		return NodeStatus{Node: node, Refused: map[string]float64{"max_series_per_metric": v}}
	}
	t0 := time.Now()
	steps := []struct {
		invalid float64 // added on this node before the tick
		nodes   []NodeStatus
		want    map[string]float64 // rate by reason at this tick; absent is NaN
	}{
		{0, []NodeStatus{limit("ing-1", 100), limit("ing-2", 0)}, nil},
		{50, []NodeStatus{limit("ing-1", 200), limit("ing-2", 100)}, map[string]float64{"invalid": 5, "max_series_per_metric": 20}},
		{0, []NodeStatus{limit("ing-1", 10), {Node: "ing-2", Error: "timeout"}}, map[string]float64{"invalid": 0}},
		{10, []NodeStatus{limit("ing-1", 60), limit("ing-2", 300)}, map[string]float64{"invalid": 1, "max_series_per_metric": 5}},
	}
	for i, st := range steps {
		invalid.Add(st.invalid)
		nodes.nodes = st.nodes
		h.Sample(context.Background(), t0.Add(time.Duration(i)*10*time.Second))
		times, rates := h.Refused()
		require.Len(t, times, i+1)
		for _, reason := range []string{"invalid", "max_series_per_metric"} {
			got := math.NaN()
			if vs := rates[reason]; vs != nil {
				got = vs[i]
			}
			if want, ok := st.want[reason]; ok {
				require.InDelta(t, want, got, 1e-9, "tick %d, %s", i, reason)
			} else {
				require.True(t, math.IsNaN(got), "tick %d, %s: %v", i, reason, got)
			}
		}
	}
	// The overview shows the last rates beside the totals.
	d := c.ui.d
	d.Gatherer, d.Nodes, d.History = reg, nodes, h
	u, err := New(d)
	require.NoError(t, err)
	mux := http.NewServeMux()
	u.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `<tr><th scope="row">max_series_per_metric</th><td class="num">5/s</td><td class="num">360</td></tr>`)
	require.Contains(t, body, `<tr><th scope="row">invalid</th><td class="num">1/s</td><td class="num">60</td></tr>`)
	require.Contains(t, body, `<p class="n">6/s</p><p>refused and dropped per second`)
}
