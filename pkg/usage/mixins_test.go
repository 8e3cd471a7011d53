package usage

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/datasets"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/usage/grafana"
	"github.com/promgov/promgov/pkg/usage/promqlx"
	"github.com/promgov/promgov/pkg/usage/rules"
)

// loadFileRefs extracts one mixin file (dashboard JSON or rule YAML).
func loadFileRefs(t testing.TB, path string) (*promqlx.Refs, int) {
	t.Helper()
	refs := promqlx.NewRefs()
	if strings.HasSuffix(path, ".json") {
		ds, err := grafana.LoadPath(path)
		require.NoError(t, err, path)
		require.Len(t, ds, 1, path)
		require.NoError(t, ds[0].Errors(), path)
		return ds[0].Refs(), len(ds[0].Queries)
	}
	rs, err := rules.LoadPath(path, false)
	require.NoError(t, err, path)
	for _, r := range rs {
		require.NoError(t, r.Err, "%s: %s", path, r.ID())
		refs.Merge(r.Refs)
	}
	return refs, len(rs)
}

func TestMixinsExtractEveryFile(t *testing.T) {
	dir := datasets.MixinsDir(t)
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if !d.IsDir() && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".yaml")) {
			files = append(files, p)
		}
		return nil
	}))
	require.GreaterOrEqual(t, len(files), 40)
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, dir+"/"), func(t *testing.T) {
			refs, n := loadFileRefs(t, f)
			if n > 0 {
				require.NotEmpty(t, refs.Metrics, "every non-empty file reads some metric")
			}
		})
	}
}

func TestMixinsExpectedMetrics(t *testing.T) {
	dir := datasets.MixinsDir(t)
	data, err := os.ReadFile("testdata/expected_metrics.yaml")
	require.NoError(t, err)
	var want map[string][]string
	require.NoError(t, yaml.Unmarshal(data, &want))
	require.NotEmpty(t, want)
	for file, metrics := range want {
		t.Run(file, func(t *testing.T) {
			refs, _ := loadFileRefs(t, filepath.Join(dir, file))
			sort.Strings(metrics)
			require.Equal(t, metrics, refs.Names())
			require.Empty(t, refs.Patterns)
		})
	}
}

func TestMixinsLabelUsage(t *testing.T) {
	dir := datasets.MixinsDir(t)
	tests := map[string]struct {
		file, metric string
		labels       []string
		all          bool
	}{
		// sum(alertmanager_alerts{job=~"$job"}) by (job,instance) + label_values(alertmanager_alerts, job)
		"aggregated dashboard panel": {file: "alertmanager/dashboards/alertmanager-overview.json", metric: "alertmanager_alerts", labels: []string{"instance", "job"}},
		// sum without(instance, node) (topk(1, ...{cluster, job, namespace, persistentvolumeclaim}))
		"sum without keeps all labels": {file: "kubernetes/dashboards/persistentvolumesusage.json", metric: "kubelet_volume_stats_inodes",
			labels: []string{"cluster", "instance", "job", "namespace", "node", "persistentvolumeclaim"}, all: true},
		// count without (cpu, mode) (node_cpu_seconds_total{job="node",mode="idle"}) and rate(...{mode=~...})
		"recording rule input": {file: "node-exporter/rules.yaml", metric: "node_cpu_seconds_total", labels: []string{"cpu", "job", "mode"}, all: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			refs, _ := loadFileRefs(t, filepath.Join(dir, tc.file))
			u := refs.Metrics[tc.metric]
			require.NotNil(t, u)
			require.Equal(t, tc.labels, u.LabelNames())
			require.Equal(t, tc.all, u.AllLabels)
		})
	}
}

// mixinConsumers loads a mixin's dashboards and rules as the Manager would.
func mixinConsumers(t testing.TB, mixin string) []Consumer {
	t.Helper()
	dir := filepath.Join(datasets.MixinsDir(t), mixin)
	var out []Consumer
	srcs := []Source{&DashboardFiles{Path: filepath.Join(dir, "dashboards")}}
	for _, f := range []string{"alerts.yaml", "rules.yaml"} {
		srcs = append(srcs, &RuleFiles{Path: filepath.Join(dir, f)})
	}
	for _, s := range srcs {
		res, err := s.Load(context.Background())
		require.NoError(t, err)
		require.Zero(t, res.ParseErrors, res.SampleErrors)
		out = append(out, res.Consumers...)
	}
	return out
}

// TestMixinsSummary reports, per mixin, how many metric names the dashboards
// and rules read and the most-read metrics (numbers quoted in docs/usage.md).
func TestMixinsSummary(t *testing.T) {
	for _, mixin := range []string{"kubernetes", "node-exporter"} {
		t.Run(mixin, func(t *testing.T) {
			cs := mixinConsumers(t, mixin)
			byKind := map[string]map[string]struct{}{}
			count := map[string]int{}
			recorded := map[string]bool{}
			for _, c := range cs {
				if c.Records != "" {
					recorded[c.Records] = true
				}
				if byKind[c.Kind] == nil {
					byKind[c.Kind] = map[string]struct{}{}
				}
				for n := range c.Refs.Metrics {
					byKind[c.Kind][n] = struct{}{}
					count[n]++
				}
			}
			all := map[string]struct{}{}
			for _, m := range byKind {
				maps.Copy(all, m)
			}
			raw := 0
			for n := range all {
				if !recorded[n] {
					raw++
				}
			}
			names := slices.Collect(maps.Keys(count))
			sort.Slice(names, func(i, j int) bool {
				if count[names[i]] != count[names[j]] {
					return count[names[i]] > count[names[j]]
				}
				return names[i] < names[j]
			})
			var top, topRaw []string
			for _, n := range names {
				if len(top) < 5 {
					top = append(top, fmt.Sprintf("%s(%d)", n, count[n]))
				}
				if len(topRaw) < 5 && !recorded[n] {
					topRaw = append(topRaw, fmt.Sprintf("%s(%d)", n, count[n]))
				}
			}
			ruleNames := maps.Clone(byKind[KindAlert])
			maps.Copy(ruleNames, byKind[KindRecordingRule])
			t.Logf("%s: %d metric names read (%d scraped, %d recording-rule outputs); dashboards %d, rules %d (alerts %d, recording rules %d); %d consumers (dashboard queries + rules); top5 %v; top5 scraped %v",
				mixin, len(all), raw, len(all)-raw, len(byKind[KindDashboard]), len(ruleNames), len(byKind[KindAlert]), len(byKind[KindRecordingRule]), len(cs), top, topRaw)
			require.NotEmpty(t, all)
		})
	}
}

func BenchmarkMixinExtraction(b *testing.B) {
	for _, mixin := range []string{"kubernetes", "node-exporter"} {
		b.Run(mixin, func(b *testing.B) {
			datasets.MixinsDir(b)
			b.ReportAllocs()
			for b.Loop() {
				mixinConsumers(b, mixin)
			}
		})
	}
}

func BenchmarkClassifyMixins(b *testing.B) {
	var cs []Consumer
	for _, mixin := range []string{"kubernetes", "node-exporter"} {
		cs = append(cs, mixinConsumers(b, mixin)...)
	}
	costs := make([]MetricCost, 0, 2000)
	for i := range 2000 {
		costs = append(costs, MetricCost{Name: fmt.Sprintf("metric_%d", i), Series: uint64(i), Labels: []LabelCost{{Name: "job"}, {Name: "instance"}}})
	}
	for _, c := range cs {
		for n := range c.Refs.Metrics {
			costs = append(costs, MetricCost{Name: n, Series: 10, Labels: []LabelCost{{Name: "job"}, {Name: "pod"}}})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		Classify(cs, AccessSnapshot{}, costs, time.Unix(0, 0))
	}
}
