package integration

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/datasets"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/promqlx"
	"github.com/promgov/promgov/pkg/usage/rules"
)

// mixinRuleFiles are the real mixin rule files loaded into Prometheus,
// relative to ../shared/datasets/mixins.
var mixinRuleFiles = []string{
	"kubernetes/rules.yaml",
	"kubernetes/alerts.yaml",
	"node-exporter/rules.yaml",
	"node-exporter/alerts.yaml",
}

// mixinDashboardDirs are the dashboard folders given to the usage Manager.
var mixinDashboardDirs = []string{"kubernetes/dashboards", "node-exporter/dashboards"}

// TestUsageRulesAPI loads the kubernetes and node-exporter mixin rules into a
// real Prometheus 3.16 and reads them back through /api/v1/rules: with the
// rules client, with the usage.RulesAPI source, and through a usage Manager
// (with the mixin dashboards as a second kind of source) whose
// /api/v1/usage/sources must report every source healthy with its counts.
// The files themselves, read by an independent YAML decode and by the file
// loader (rules.LoadPath), are the oracle.
func TestUsageRulesAPI(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	mixins := mixinsRoot(t)
	var files []string
	for _, f := range mixinRuleFiles {
		files = append(files, filepath.Join(mixins, f))
	}
	want := expectedGroups(t, files)
	promURL := startRulesPrometheus(t, files, "")

	t.Run("raw_api", func(t *testing.T) {
		var data struct {
			Groups []struct {
				Name  string `json:"name"`
				File  string `json:"file"`
				Rules []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query string `json:"query"`
				} `json:"rules"`
			} `json:"groups"`
		}
		apiGet(t, promURL, "/api/v1/rules", url.Values{}, &data)
		got := map[string]fileGroup{}
		for _, g := range data.Groups {
			require.NotContains(t, got, g.Name, "group %q served twice", g.Name)
			fg := fileGroup{File: g.File}
			for _, r := range g.Rules {
				kind := rules.KindAlert
				if r.Type == "recording" {
					kind = rules.KindRecording
				} else {
					require.Equal(t, "alerting", r.Type, "%s/%s", g.Name, r.Name)
				}
				require.NotEmpty(t, r.Query, "%s/%s", g.Name, r.Name)
				fg.Rules = append(fg.Rules, ruleKey{Kind: kind, Name: r.Name})
			}
			got[g.Name] = fg
		}
		require.Equal(t, want, got, "Prometheus must serve every group and rule of the files, in file order")
	})

	// Rules as the file loader sees them, grouped, in file order.
	fileRules := map[string][]rules.Rule{}
	for _, f := range files {
		rs, err := rules.LoadPath(f, false)
		require.NoError(t, err, f)
		for _, r := range rs {
			require.NoError(t, r.Err, "%s: %s", f, r.ID())
			fileRules[r.Group] = append(fileRules[r.Group], r)
		}
	}
	require.Equal(t, withoutFiles(want), ruleKeys(fileRules), "the file loader must return every group and rule")

	t.Run("client", func(t *testing.T) {
		c, err := rules.NewClient(rules.ClientOptions{URL: promURL})
		require.NoError(t, err)
		rs, err := c.Rules(context.Background())
		require.NoError(t, err)
		apiRules := map[string][]rules.Rule{}
		for _, r := range rs {
			require.NoError(t, r.Err, "%s: %q", r.ID(), r.Expr)
			apiRules[r.Group] = append(apiRules[r.Group], r)
		}
		// Every group and rule, recording rules marked as such.
		require.Equal(t, withoutFiles(want), ruleKeys(apiRules))

		// What each rule reads is the same whether Prometheus re-printed
		// the expression (API) or it came from the file.
		wantNames, gotNames := map[string]struct{}{}, map[string]struct{}{}
		for g, frs := range fileRules {
			ars := apiRules[g]
			for i, fr := range frs {
				ar := ars[i]
				require.Equal(t, refsSummary(fr.Refs), refsSummary(ar.Refs),
					"rule %s reads something else through the API\nfile: %s\napi:  %s", fr.ID(), fr.Expr, ar.Expr)
				for _, n := range fr.Refs.Names() {
					wantNames[n] = struct{}{}
				}
				for _, n := range ar.Refs.Names() {
					gotNames[n] = struct{}{}
				}
			}
		}
		require.Equal(t, slices.Sorted(maps.Keys(wantNames)), slices.Sorted(maps.Keys(gotNames)))
		t.Logf("%d groups, %d rules (%d recording), %d distinct metric names read", len(apiRules), len(rs), countKind(want, rules.KindRecording), len(gotNames))
	})

	t.Run("source", func(t *testing.T) {
		src := &usage.RulesAPI{Config: usage.RulesAPIConfig{URL: promURL}}
		require.Equal(t, "rules_api", src.Kind())
		res, err := src.Load(context.Background())
		require.NoError(t, err)
		var fileRes []*usage.LoadResult
		for _, f := range files {
			fr, err := (&usage.RuleFiles{Path: f}).Load(context.Background())
			require.NoError(t, err, f)
			fileRes = append(fileRes, fr)
		}
		items, recording := 0, 0
		var wantConsumers []string
		for _, fr := range fileRes {
			items += fr.Items
			for _, c := range fr.Consumers {
				wantConsumers = append(wantConsumers, consumerKey(c))
			}
		}
		var gotConsumers []string
		for _, c := range res.Consumers {
			gotConsumers = append(gotConsumers, consumerKey(c))
			if c.Kind == usage.KindRecordingRule {
				recording++
				require.Equal(t, c.Title, c.Records, "a recording rule consumer records its own name")
			} else {
				require.Equal(t, usage.KindAlert, c.Kind)
				require.Empty(t, c.Records)
			}
		}
		require.Equal(t, items, res.Items)
		require.Equal(t, items, res.Expressions)
		require.Zero(t, res.ParseErrors, "%v", res.SampleErrors)
		require.Len(t, res.Consumers, items)
		require.Equal(t, countKind(want, rules.KindRecording), recording)
		sort.Strings(wantConsumers)
		sort.Strings(gotConsumers)
		require.Equal(t, wantConsumers, gotConsumers, "the rules API source must yield the rule files' consumers")
	})

	// A URL with a path prefix (Mimir's /prometheus) is joined correctly,
	// with or without a trailing slash; a wrong prefix is an APIError.
	t.Run("route_prefix", func(t *testing.T) {
		prefixed := startRulesPrometheus(t, files, "/prometheus")
		for name, tc := range map[string]struct {
			url      string
			wantCode int
		}{
			"prefix":          {url: prefixed},
			"trailing_slash":  {url: prefixed + "/"},
			"missing_prefix":  {url: strings.TrimSuffix(prefixed, "/prometheus"), wantCode: http.StatusNotFound},
			"prefix_not_used": {url: promURL + "/prometheus", wantCode: http.StatusNotFound},
		} {
			t.Run(name, func(t *testing.T) {
				src := &usage.RulesAPI{Config: usage.RulesAPIConfig{URL: tc.url}}
				res, err := src.Load(context.Background())
				if tc.wantCode != 0 {
					var apiErr *rules.APIError
					require.ErrorAs(t, err, &apiErr)
					require.Equal(t, tc.wantCode, apiErr.Code)
					return
				}
				require.NoError(t, err)
				require.Equal(t, countKind(want, rules.KindRecording)+countKind(want, rules.KindAlert), res.Items)
				require.Zero(t, res.ParseErrors)
			})
		}
	})

	t.Run("manager", func(t *testing.T) {
		testUsageManager(t, mixins, promURL, want)
	})

	// A rules API that answers 404 makes its source unhealthy in
	// /promgov/api/v1/usage/sources, with the status in last_error.
	t.Run("manager_unhealthy", func(t *testing.T) {
		cfg := usage.DefaultConfig()
		m, err := usage.NewManager(cfg, usage.Deps{
			Sources: []usage.Source{&usage.RulesAPI{Config: usage.RulesAPIConfig{URL: promURL + "/prometheus"}}},
			Access:  usage.NewAccessStats(cfg.Queries.MaxMetrics, cfg.Queries.MaxUsersPerMetric),
			Costs:   usage.StaticCosts{},
			Logger:  slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		m.Refresh(context.Background())
		srv := httptest.NewServer(usage.NewAPI(m, "X-Scope-OrgID"))
		defer srv.Close()
		var statuses []struct {
			Kind        string     `json:"kind"`
			Healthy     bool       `json:"healthy"`
			LastAttempt *time.Time `json:"last_attempt"`
			LastSuccess *time.Time `json:"last_success"`
			LastError   string     `json:"last_error"`
		}
		apiGet(t, srv.URL, usage.PathSources, url.Values{}, &statuses)
		require.Len(t, statuses, 1)
		require.Equal(t, "rules_api", statuses[0].Kind)
		require.False(t, statuses[0].Healthy)
		require.NotNil(t, statuses[0].LastAttempt)
		require.Nil(t, statuses[0].LastSuccess)
		require.Contains(t, statuses[0].LastError, "status 404")
	})
}

// testUsageManager runs a usage Manager over the rules API and the mixin
// dashboard folders and checks its HTTP API.
func testUsageManager(t *testing.T, mixins, promURL string, want map[string]fileGroup) {
	sources := []usage.Source{&usage.RulesAPI{Config: usage.RulesAPIConfig{URL: promURL}}}
	wantDashboards := map[string]*usage.LoadResult{}
	for _, d := range mixinDashboardDirs {
		src := &usage.DashboardFiles{Path: filepath.Join(mixins, d)}
		res, err := src.Load(context.Background())
		require.NoError(t, err, d)
		require.Positive(t, res.Items, d)
		wantDashboards[src.Path] = res
		sources = append(sources, src)
	}
	cfg := usage.DefaultConfig()
	cfg.ReloadInterval = time.Hour // one load; the test waits for it
	reg := promclient.NewRegistry()
	costs := usage.StaticCosts{
		{Name: "node_cpu_seconds_total", Series: 80, Labels: []usage.LabelCost{{Name: "cpu"}, {Name: "mode"}, {Name: "instance"}, {Name: "job"}}},
		{Name: "kube_pod_container_status_waiting_reason", Series: 10},
		{Name: "promgov_it_nobody_reads_total", Series: 5},
	}
	m, err := usage.NewManager(cfg, usage.Deps{
		Sources:    sources,
		Access:     usage.NewAccessStats(cfg.Queries.MaxMetrics, cfg.Queries.MaxUsersPerMetric),
		Costs:      costs,
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: reg,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-errc)
	}()
	require.Eventually(t, func() bool { return m.Report() != nil }, 60*time.Second, 50*time.Millisecond,
		"the Manager never finished its first round")

	srv := httptest.NewServer(usage.NewAPI(m, "X-Scope-OrgID"))
	defer srv.Close()

	var statuses []struct {
		Name         string     `json:"name"`
		Kind         string     `json:"kind"`
		Healthy      bool       `json:"healthy"`
		LastSuccess  *time.Time `json:"last_success"`
		HealthySince *time.Time `json:"healthy_since"`
		LastError    string     `json:"last_error"`
		Items        int        `json:"items"`
		Expressions  int        `json:"expressions"`
		Consumers    int        `json:"consumers"`
		ParseErrors  int        `json:"parse_errors"`
	}
	apiGet(t, srv.URL, usage.PathSources, url.Values{}, &statuses)
	require.Len(t, statuses, len(sources))
	nRules := countKind(want, rules.KindRecording) + countKind(want, rules.KindAlert)
	for _, st := range statuses {
		require.True(t, st.Healthy, "%s %s: %s", st.Kind, st.Name, st.LastError)
		require.NotNil(t, st.LastSuccess, st.Name)
		require.NotNil(t, st.HealthySince, st.Name)
		require.Empty(t, st.LastError, st.Name)
		require.Zero(t, st.ParseErrors, st.Name)
		switch st.Kind {
		case "rules_api":
			require.Equal(t, promURL, st.Name)
			require.Equal(t, nRules, st.Items)
			require.Equal(t, nRules, st.Expressions)
			require.Equal(t, nRules, st.Consumers)
		case "dashboards_files":
			d := wantDashboards[st.Name]
			require.NotNil(t, d, "unexpected dashboard source %s", st.Name)
			require.Equal(t, d.Items, st.Items, st.Name)
			require.Equal(t, d.Expressions, st.Expressions, st.Name)
			require.Equal(t, len(d.Consumers), st.Consumers, st.Name)
			require.Positive(t, st.Consumers, st.Name)
		default:
			t.Fatalf("unexpected source kind %q", st.Kind)
		}
		t.Logf("source %s %s: items=%d expressions=%d consumers=%d", st.Kind, st.Name, st.Items, st.Expressions, st.Consumers)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP promgov_usage_source_loads_total Usage source loads by kind and result (success, failure).
# TYPE promgov_usage_source_loads_total counter
promgov_usage_source_loads_total{kind="dashboards_files",result="success"} 2
promgov_usage_source_loads_total{kind="rules_api",result="success"} 1
`), "promgov_usage_source_loads_total"))

	// Classification joins the sources: a metric read by recording rules
	// and dashboards, one read by an alert served by the rules API, and
	// one nobody reads.
	var ms []struct {
		Name   string         `json:"name"`
		State  string         `json:"state"`
		UsedBy []usage.UsedBy `json:"used_by"`
		Reason string         `json:"reason"`
	}
	apiGet(t, srv.URL, usage.PathMetrics, url.Values{}, &ms)
	byName := map[string]int{}
	for i, mr := range ms {
		byName[mr.Name] = i
	}
	kinds := func(name string) []string {
		i, ok := byName[name]
		require.True(t, ok, "%s not classified", name)
		var out []string
		for _, u := range ms[i].UsedBy {
			if !slices.Contains(out, u.Kind) {
				out = append(out, u.Kind)
			}
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, "used", ms[byName["node_cpu_seconds_total"]].State)
	require.Subset(t, kinds("node_cpu_seconds_total"), []string{usage.KindDashboard, usage.KindRecordingRule})
	require.Equal(t, "used", ms[byName["kube_pod_container_status_waiting_reason"]].State)
	require.Contains(t, kinds("kube_pod_container_status_waiting_reason"), usage.KindAlert)
	require.Equal(t, "unused", ms[byName["promgov_it_nobody_reads_total"]].State)
	require.Equal(t, "no_readers", ms[byName["promgov_it_nobody_reads_total"]].Reason)
}

// mixinsRoot returns the mixins dataset, or skips the test when it or one
// of the files this test loads is absent.
func mixinsRoot(t *testing.T) string {
	t.Helper()
	m := datasets.MixinsDir(t)
	for _, f := range append(slices.Clone(mixinRuleFiles), mixinDashboardDirs...) {
		if _, err := os.Stat(filepath.Join(m, f)); err != nil {
			t.Skipf("mixins dataset incomplete (expected %s): %v", filepath.Join(m, f), err)
		}
	}
	return m
}

// startRulesPrometheus starts Prometheus 3.16 with the rule files loaded and
// returns its base URL (including routePrefix, "" for none) once it is ready.
func startRulesPrometheus(t *testing.T, files []string, routePrefix string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	// Rules are evaluated once at start and then hourly: the test reads
	// definitions, not results.
	b.WriteString("global:\n  evaluation_interval: 1h\nrule_files:\n")
	for _, f := range files {
		fmt.Fprintf(&b, "  - %q\n", f)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(b.String()), 0o644))
	addr := freeAddr(t)
	args := []string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	}
	if routePrefix != "" {
		args = append(args, "--web.route-prefix="+routePrefix)
	}
	p := startProcess(t, "prometheus-rules", prometheus, args...)
	base := "http://" + addr + routePrefix
	waitReady(t, p, base+"/-/ready")
	return base
}

// ruleKey is one rule as the files define it.
type ruleKey struct {
	Kind rules.Kind
	Name string
}

// fileGroup is one rule group: its file and rules in file order.
type fileGroup struct {
	File  string
	Rules []ruleKey
}

// expectedGroups decodes the rule files independently of pkg/usage: group
// name → file and rules. Group names must be unique across the files.
func expectedGroups(t *testing.T, files []string) map[string]fileGroup {
	t.Helper()
	out := map[string]fileGroup{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Record string `yaml:"record"`
					Alert  string `yaml:"alert"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(data, &rf), f)
		require.NotEmpty(t, rf.Groups, f)
		for _, g := range rf.Groups {
			require.NotContains(t, out, g.Name, "group %q is defined twice", g.Name)
			fg := fileGroup{File: f}
			for _, r := range g.Rules {
				if r.Record != "" {
					fg.Rules = append(fg.Rules, ruleKey{Kind: rules.KindRecording, Name: r.Record})
				} else {
					fg.Rules = append(fg.Rules, ruleKey{Kind: rules.KindAlert, Name: r.Alert})
				}
			}
			out[g.Name] = fg
		}
	}
	return out
}

// withoutFiles drops the file from each group.
func withoutFiles(gs map[string]fileGroup) map[string][]ruleKey {
	out := map[string][]ruleKey{}
	for name, g := range gs {
		out[name] = g.Rules
	}
	return out
}

// ruleKeys reduces loaded rules to group → kinds and names.
func ruleKeys(gs map[string][]rules.Rule) map[string][]ruleKey {
	out := map[string][]ruleKey{}
	for name, rs := range gs {
		for _, r := range rs {
			out[name] = append(out[name], ruleKey{Kind: r.Kind, Name: r.Name})
		}
	}
	return out
}

// countKind counts the rules of one kind.
func countKind(gs map[string]fileGroup, kind rules.Kind) int {
	n := 0
	for _, g := range gs {
		for _, r := range g.Rules {
			if r.Kind == kind {
				n++
			}
		}
	}
	return n
}

// refsSummary renders what an expression reads, comparably: metric →
// labels ("*" when whole series are read), and name patterns.
func refsSummary(r *promqlx.Refs) map[string][]string {
	out := map[string][]string{}
	for name, u := range r.Metrics {
		ls := u.LabelNames()
		if u.AllLabels {
			ls = append(ls, "*")
		}
		out[name] = ls
	}
	for _, p := range r.Patterns {
		key := "pattern:" + p.Regex
		if p.Negative {
			key = "pattern!:" + p.Regex
		}
		out[key] = p.Use.LabelNames()
	}
	return out
}

// consumerKey renders a consumer for multiset comparison.
func consumerKey(c usage.Consumer) string {
	return fmt.Sprintf("%s|%s|%s|%v", c.Kind, c.ID, c.Records, refsSummary(c.Refs))
}
