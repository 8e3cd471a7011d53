package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/promgov/promgov/deploy/mixin"
)

// mixinDashboardNames are the ConfigMaps the chart renders for the mixin's
// dashboards when dashboards.enabled is true.
func mixinDashboardNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, d := range mixin.Dashboards() {
		names = append(names, "ConfigMap/"+fullname+"-dashboard-"+strings.TrimSuffix(d.File, ".json"))
	}
	require.NotEmpty(t, names)
	return names
}

// TestChartShipsMixin checks that the rendered chart carries the monitoring
// mixin's real output (deploy/mixin, generated from Go): every dashboard as
// a ConfigMap with the Grafana sidecar label, byte for byte, and every
// alerting and recording rule group in the PrometheusRule, before the
// operator's extra groups. The objects were decoded strictly by render.
func TestChartShipsMixin(t *testing.T) {
	requireHelm(t)
	optionsFile := filepath.Join(t.TempDir(), "every-option.yaml")
	require.NoError(t, os.WriteFile(optionsFile, []byte(everyOption), 0o644))
	objs := render(t, []string{optionsFile})

	files, err := mixin.Files()
	require.NoError(t, err)
	for _, d := range mixin.Dashboards() {
		cm := one[*corev1.ConfigMap](t, objs, fullname+"-dashboard-"+strings.TrimSuffix(d.File, ".json"))
		require.Equal(t, "1", cm.Labels["grafana_dashboard"], "the Grafana sidecar's label")
		require.Equal(t, strings.TrimRight(string(files["dashboards/"+d.File]), "\n"), cm.Data[d.File])
	}

	var want []string
	for _, name := range []string{"alerts.yaml", "rules.yaml"} {
		var f struct {
			Groups []struct {
				Name  string           `yaml:"name"`
				Rules []map[string]any `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(files[name], &f))
		for _, g := range f.Groups {
			want = append(want, g.Name+"/"+strings.Repeat("r", len(g.Rules)))
		}
	}
	want = append(want, "promgov/r") // everyOption's own group
	rule := one[*monitoringv1.PrometheusRule](t, objs, fullname)
	var got []string
	for _, g := range rule.Spec.Groups {
		got = append(got, g.Name+"/"+strings.Repeat("r", len(g.Rules)))
	}
	require.ElementsMatch(t, want, got)
	// Alert templates reach the operator unexpanded by Helm.
	var sawTemplate bool
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			sawTemplate = sawTemplate || strings.Contains(r.Annotations["summary"], "{{ $labels.instance }}")
		}
	}
	require.True(t, sawTemplate, "no alert summary kept its {{ $labels.instance }} template")

	// mixin: false leaves only the operator's groups.
	objs = render(t, []string{optionsFile}, "prometheusRule.mixin=false")
	rule = one[*monitoringv1.PrometheusRule](t, objs, fullname)
	require.Len(t, rule.Spec.Groups, 1)
	require.Equal(t, "promgov", rule.Spec.Groups[0].Name)
}
