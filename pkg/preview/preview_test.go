package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/reservoir"
	"github.com/promgov/promgov/pkg/rules"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// traffic is one ingester's state after known traffic: a real reservoir
// and a real cardinality tracker fed the same series.
type traffic struct {
	res     *reservoir.Reservoir
	tracker *cardinality.Tracker
	now     time.Time
}

func newTraffic(t *testing.T) *traffic {
	t.Helper()
	tr, err := cardinality.New(cardinality.DefaultConfig(), cardinality.Options{})
	require.NoError(t, err)
	cfg := reservoir.DefaultConfig()
	cfg.SampleInterval = 0
	return &traffic{res: reservoir.New(cfg, nil), tracker: tr, now: time.Now()}
}

// push feeds series (one sample each) of tenant to both.
func (tf *traffic) push(tenant string, series []labels.Labels) {
	var batch []byte
	names := make([]string, 0, len(series))
	for _, ls := range series {
		body := record.AppendLabels(nil, ls)
		body = protowire.AppendTag(body, record.FieldSamples, protowire.BytesType)
		body = protowire.AppendVarint(body, 11)
		body = append(body, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 1)
		batch = record.AppendHeader(batch, ls.Hash(), 0, 1, 0, 0, len(body))
		batch = append(batch, body...)
		name := ls.Get(model.MetricNameLabel)
		names = append(names, name)
		tf.tracker.Observe(&cardinality.Series{Tenant: tenant, Metric: name, Labels: ls, Samples: 1, Bytes: len(body)}, tf.now)
	}
	tf.res.Offer(tenant, batch, names, tf.now)
}

// knownTraffic is 3000 series of api_requests_total (10 instances x 300
// request IDs), 20 of debug_events_total, 40 of legacy_hits_total and 30
// of node_cpu_seconds_total.
func knownTraffic(t *testing.T) *traffic {
	tf := newTraffic(t)
	var api []labels.Labels
	for i := range 3000 {
		api = append(api, labels.FromStrings(model.MetricNameLabel, "api_requests_total", "instance", fmt.Sprintf("api-%d:8080", i%10),
			"job", "api", "request_id", strconv.Itoa(i)))
	}
	tf.push("team-a", api)
	tf.push("team-a", metricSeries("debug_events_total", 20))
	tf.push("team-a", metricSeries("legacy_hits_total", 40))
	tf.push("team-a", metricSeries("node_cpu_seconds_total", 30))
	return tf
}

func metricSeries(name string, n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings(model.MetricNameLabel, name, "instance", fmt.Sprintf("host-%d:9100", i), "job", "node")
	}
	return out
}

const candidate = `
rules:
  - name: drop-request-id
    scope: {selector: '{__name__="api_requests_total"}'}
    relabel_configs:
      - regex: request_id
        action: labeldrop
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: debug_.*
        action: drop
  - name: rename-legacy
    relabel_configs:
      - source_labels: [__name__]
        regex: legacy_(.*)
        target_label: __name__
        replacement: app_$1
cardinality:
  limits:
    metrics:
      - metric: node_cpu_seconds_total
        max_series_per_metric: 25
`

// local is the cluster of one in-process ingester.
type local struct{ ing *Ingester }

func (l local) Preview(ctx context.Context, req *ingesterv1.PreviewConfigRequest) ([]*ingesterv1.PreviewConfigResponse, error) {
	r, err := l.ing.Preview(ctx, req)
	if err != nil {
		return nil, err
	}
	return []*ingesterv1.PreviewConfigResponse{r}, nil
}

// activeRules is a rules manager running the rules section of yml.
func activeRules(t *testing.T, yml string) *rules.Manager {
	t.Helper()
	m := rules.NewManager(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	cfg, err := rules.LoadConfig([]byte(yml))
	require.NoError(t, err)
	require.NoError(t, m.Reload(cfg))
	return m
}

func runPreview(t *testing.T, tf *traffic, body, query string) (int, Data, string) {
	t.Helper()
	return runPreviewOver(t, tf, activeRules(t, ""), body, query)
}

func runPreviewOver(t *testing.T, tf *traffic, active Baseline, body, query string) (int, Data, string) {
	t.Helper()
	srv := httptest.NewServer(Handler(HandlerDeps{Cluster: local{NewIngester(tf.res, tf.tracker, nil)}, Rules: active, TenantHeader: "X-Scope-OrgID"}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+Path+query, "application/yaml", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	var d Data
	if env.Status == "success" {
		require.NoError(t, json.Unmarshal(env.Data, &d))
	}
	return resp.StatusCode, d, env.Error
}

func TestPreviewKnownTraffic(t *testing.T) {
	tf := knownTraffic(t)
	code, d, msg := runPreview(t, tf, candidate, "?examples=6")
	require.Equal(t, http.StatusOK, code, msg)

	byMetric := map[string]Metric{}
	for _, m := range d.Metrics {
		byMetric[m.Metric] = m
	}
	api := byMetric["api_requests_total"]
	require.False(t, api.Exact)
	saved := api.SeriesBefore - api.SeriesAfter
	require.InEpsilon(t, 2990, saved, 0.05, "series saved by the label drop: %.1f", saved)
	require.InDelta(t, 10, api.SeriesAfter, 1)

	debug := byMetric["debug_events_total"]
	require.True(t, debug.Exact)
	require.Equal(t, 20.0, debug.SeriesDropped)
	require.Zero(t, debug.SeriesAfter)

	legacy := byMetric["legacy_hits_total"]
	require.Equal(t, []Output{{Metric: "app_hits_total", Series: 40, SamplesRate: legacy.SamplesRateBefore}}, legacy.Outputs)

	// The limit: 30 series, max 25.
	require.Len(t, d.Limits, 1)
	require.Equal(t, Limit{Limit: "max_series_per_metric", Tenant: "team-a", Metric: "node_cpu_seconds_total", Max: 25, Mode: "enforce",
		SeriesAfterRules: 30, SeriesRefused: 5, SamplesRateRefused: d.Limits[0].SamplesRateRefused}, d.Limits[0])

	rules := map[string]map[string]Effect{}
	for _, r := range d.Rules {
		rules[r.Rule] = map[string]Effect{}
		for _, e := range r.Effects {
			rules[r.Rule][e.Effect] = e
		}
	}
	require.InEpsilon(t, 3000, rules["drop-request-id"]["rewritten"].Series, 0.05)
	require.Equal(t, 20.0, rules["drop-debug"]["dropped"].Series)
	require.Equal(t, 40.0, rules["rename-legacy"]["renamed"].Series)
	require.Equal(t, 1, rules["rename-legacy"]["renamed"].Metrics)

	tot := d.Totals
	require.InEpsilon(t, 3090, tot.SeriesBefore, 0.05)
	require.InEpsilon(t, 3090-2990-20-5, tot.SeriesAfter, 0.05)
	require.Equal(t, 5.0, tot.SeriesRefused)
	require.Equal(t, 4, tot.MetricsChanged)

	require.NotEmpty(t, d.Examples)
	require.LessOrEqual(t, len(d.Examples), 6)
	for _, ex := range d.Examples {
		require.NotEmpty(t, ex.Trace, ex.Input)
	}
	require.Equal(t, "api_requests_total", byMetric[d.Metrics[0].Metric].Metric, "the most series saved come first")
}

// TestPreviewAgainstActiveRules: what the active rules already do is the
// "before", not the candidate's change: the sample still holds series the
// active label drop rewrites (sent before it was enforced), and the
// candidate that adds a rule to it changes only what the new rule does.
func TestPreviewAgainstActiveRules(t *testing.T) {
	tf := knownTraffic(t)
	const labeldrop = `
rules:
  - name: drop-request-id
    scope: {selector: '{__name__="api_requests_total"}'}
    relabel_configs:
      - regex: request_id
        action: labeldrop
`
	const more = labeldrop + `  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: debug_.*
        action: drop
`
	code, d, msg := runPreviewOver(t, tf, activeRules(t, labeldrop), more, "")
	require.Equal(t, http.StatusOK, code, msg)
	require.Len(t, d.Metrics, 1)
	require.Equal(t, "debug_events_total", d.Metrics[0].Metric)
	require.Equal(t, 20.0, d.Totals.SeriesSaved)
	require.InDelta(t, 10+20+40+30, d.Totals.SeriesBefore, 1, "before: after the active rules")
	for _, r := range d.Rules {
		if r.Rule == "drop-request-id" {
			require.Empty(t, r.Effects, "the active rule's effects are not the change's")
		}
	}
}

func TestPreviewTenant(t *testing.T) {
	tf := knownTraffic(t)
	tf.push("team-b", metricSeries("debug_events_total", 7))
	code, d, msg := runPreview(t, tf, candidate, "?tenant=team-b")
	require.Equal(t, http.StatusOK, code, msg)
	require.Equal(t, 1, d.SampledMetrics)
	require.Equal(t, 7.0, d.Totals.SeriesDropped)
}

func TestPreviewBadRequests(t *testing.T) {
	tf := newTraffic(t)
	cases := map[string]struct {
		body, query, want string
	}{
		"empty body":    {"", "", "no candidate"},
		"bad yaml":      {"rules: [", "", "document"},
		"unknown field": {"rulez: []", "", "rulez"},
		"invalid rule":  {"rules:\n  - name: x\n    action: explode\n", "", "rules[0]"},
		"bad limit":     {"cardinality:\n  limits:\n    defaults:\n      max_series_per_metric: -1\n", "", "max_series_per_metric"},
		"bad examples":  {"rules: []", "?examples=lots", "examples"},
		"too many":      {"rules: []", "?examples=100000", "examples"},
		"bad tenant":    {"rules: []", "?tenant=" + url.QueryEscape("a/../b"), "tenant"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, msg := runPreview(t, tf, tc.body, tc.query)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, msg, tc.want)
		})
	}
}

func TestPreviewNoTraffic(t *testing.T) {
	code, d, msg := runPreview(t, newTraffic(t), candidate, "")
	require.Equal(t, http.StatusOK, code, msg)
	require.Zero(t, d.SampledMetrics)
	require.Empty(t, d.Metrics)
	require.Len(t, d.Rules, 3)
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(candidate), "examples=3", "team-a")
	f.Add([]byte("rules: []\n"), "", "")
	f.Add([]byte("rules:\n  - name: x\n    relabel_configs: [{action: labeldrop, regex: '('}]\n"), "examples=-1", "")
	f.Add([]byte("cardinality: {limits: {metrics: [{metric: '[', max_series_per_metric: 1}]}}"), "examples=1000", "t")
	f.Fuzz(func(t *testing.T, body []byte, query, tenant string) {
		q, _ := url.ParseQuery(query)
		req, err := DecodeRequest(body, q, tenant)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotNil(t, req.Limits)
		require.GreaterOrEqual(t, req.Examples, 0)
		require.LessOrEqual(t, req.Examples, MaxExamples)
		require.True(t, strings.HasPrefix(req.Hash, "sha256:"))
		// What the ingesters get compiles there too.
		tf := newTraffic(t)
		_, err = NewIngester(tf.res, tf.tracker, nil).Preview(context.Background(), &ingesterv1.PreviewConfigRequest{Rules: req.Rules})
		require.NoError(t, err)
	})
}

// TestMergeTwoIngesters: two ingesters own disjoint metrics; the tenant
// limit applies to their sum and is taken from both in proportion.
func TestMergeTwoIngesters(t *testing.T) {
	a, b := newTraffic(t), newTraffic(t)
	a.push("t", metricSeries("a_total", 30))
	b.push("t", metricSeries("b_total", 10))
	b.push("t", metricSeries("a_total", 30)) // a second owner during a ring change: counted once
	var parts []*ingesterv1.PreviewConfigResponse
	for _, tf := range []*traffic{a, b} {
		r, err := NewIngester(tf.res, tf.tracker, nil).Preview(context.Background(), &ingesterv1.PreviewConfigRequest{Rules: "rules: []\n", BaselineRules: ""})
		require.NoError(t, err)
		parts = append(parts, r)
	}
	lim, err := cardinality.NewLimitResolver(cardinality.LimitsConfig{Defaults: cardinality.Limits{MaxSeriesPerTenant: 20, MaxSeriesPerTenantMode: cardinality.ModeEnforce}})
	require.NoError(t, err)
	d := Merge(parts, lim, 10)
	require.Equal(t, 2, d.Ingesters)
	require.Equal(t, 2, d.SampledMetrics)
	require.Equal(t, 40.0, d.Totals.SeriesBefore)
	require.InDelta(t, 20, d.Totals.SeriesAfter, 1e-9)
	require.InDelta(t, 20, d.Totals.SeriesRefused, 1e-9)
	require.Len(t, d.Limits, 1)
	require.Equal(t, "max_series_per_tenant", d.Limits[0].Limit)
	require.Len(t, d.Metrics, 2)
	for _, m := range d.Metrics {
		require.InDelta(t, m.SeriesBefore/2, m.SeriesAfter, 1e-9, m.Metric)
	}
}
