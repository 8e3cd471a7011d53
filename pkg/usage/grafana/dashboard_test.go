package grafana

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseDashboardShapes(t *testing.T) {
	data, err := os.ReadFile("testdata/shapes.json")
	require.NoError(t, err)
	d, err := ParseDashboard(data)
	require.NoError(t, err)
	require.NoError(t, d.Errors())
	require.Equal(t, "shapes", d.UID)
	require.Equal(t, "Shapes", d.Title)

	want := []string{
		"collapsed_metric", "deploy_timestamp", "elements_metric", "library_metric",
		"mixed_prom_metric", "old_row_metric", "repeated_metric", "top_total", "var_metric",
	}
	refs := d.Refs()
	require.Equal(t, want, refs.Names())
	require.Empty(t, refs.Patterns)

	tests := map[string][]string{
		"top_total":        {"instance", "job"},    // by + legend
		"var_metric":       {"cluster", "env"},     // label_values
		"deploy_timestamp": {"cluster", "version"}, // matcher + titleFormat
	}
	for m, labels := range tests {
		require.Equal(t, labels, refs.Metrics[m].LabelNames(), m)
	}
	kinds := map[QueryKind]int{}
	for _, q := range d.Queries {
		kinds[q.Kind]++
	}
	require.Equal(t, map[QueryKind]int{KindPanel: 8, KindVariable: 1, KindAnnotation: 1}, kinds)
}

func TestParseDashboardWrapped(t *testing.T) {
	d, err := ParseDashboard([]byte(`{"meta": {"slug": "x"}, "dashboard": {"uid": "w", "title": "W", "panels": [{"id": 1, "targets": [{"expr": "up"}]}]}}`))
	require.NoError(t, err)
	require.Equal(t, "w", d.UID)
	require.Equal(t, []string{"up"}, d.Refs().Names())
}

func TestParseDashboardErrors(t *testing.T) {
	tests := map[string]struct {
		in      string
		wantErr error
		bad     bool
	}{
		"not json":      {in: `{`, bad: true},
		"not dashboard": {in: `{"groups": []}`, wantErr: ErrNotDashboard},
		"bad promql":    {in: `{"panels": [{"id": 1, "targets": [{"expr": "sum(("}]}]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := ParseDashboard([]byte(tc.in))
			switch {
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
			case tc.bad:
				require.Error(t, err)
			default:
				require.NoError(t, err)
				require.Error(t, d.Errors())
			}
		})
	}
}

func TestLoadKubernetesObjects(t *testing.T) {
	ds, err := LoadPath("testdata/k8s.yaml")
	require.NoError(t, err)
	var uids []string
	var names []string
	for _, d := range ds {
		uids = append(uids, d.UID)
		names = append(names, d.Refs().Names()...)
	}
	require.Equal(t, []string{"cm-a", "gd", "cm-b"}, uids)
	require.Equal(t, []string{"configmap_metric_a", "grafanadashboard_metric", "configmap_metric_b"}, names)
}

func TestLoadGzipGrafanaDashboard(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(`{"uid": "gz", "panels": [{"id": 1, "targets": [{"expr": "gz_metric"}]}]}`))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	doc := "kind: GrafanaDashboard\nspec:\n  gzipJson: " + base64.StdEncoding.EncodeToString(buf.Bytes()) + "\n"
	ds, err := LoadDocument("gz.yaml", []byte(doc))
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, []string{"gz_metric"}, ds[0].Refs().Names())
}

func TestLoadPathFolder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"uid": "a", "panels": [{"id": 1, "targets": [{"expr": "a_metric"}]}]}`), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "b.json"), []byte(`{"uid": "b", "panels": [{"id": 1, "targets": [{"expr": "b_metric"}]}]}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "provisioning.yaml"), []byte("apiVersion: 1\nproviders: []\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600))
	ds, err := LoadPath(dir)
	require.NoError(t, err)
	require.Len(t, ds, 2)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{`), 0o600))
	ds, err = LoadPath(dir)
	require.Error(t, err)
	require.Len(t, ds, 2)

	_, err = LoadPath(filepath.Join(dir, "missing"))
	require.Error(t, err)
}

func FuzzLoadDashboard(f *testing.F) {
	for _, p := range []string{"testdata/shapes.json", "testdata/k8s.yaml"} {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(p, data)
	}
	f.Add("x.json", []byte(`{"dashboard": {"panels": [{"panels": [{"targets": [{"expr": "up"}]}]}]}}`))
	f.Add("x.yaml", []byte("kind: List\nitems: [{kind: ConfigMap, data: {a.json: '{}'}}]"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		ds, _ := LoadDocument(name, data)
		for _, d := range ds {
			require.NotNil(t, d)
			for _, q := range d.Queries {
				require.True(t, (q.Refs == nil) != (q.Err == nil), "exactly one of Refs and Err")
			}
		}
	})
}

func TestClassifyDatasourceType(t *testing.T) {
	tests := map[string]struct {
		typ, uid string
		want     dsClass
	}{
		"prometheus":        {typ: "prometheus", want: dsProm},
		"amazon prometheus": {typ: "grafana-amazonprometheus-datasource", want: dsProm},
		"victoriametrics":   {typ: "victoriametrics-metrics-datasource", want: dsProm},
		"victorialogs":      {typ: "victoriametrics-logs-datasource", want: dsOther},
		"loki":              {typ: "loki", want: dsOther},
		"expression":        {typ: "__expr__", want: dsOther},
		"mixed":             {typ: "datasource", uid: "-- Mixed --", want: dsMixed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, classifyType(tc.typ, tc.uid))
		})
	}
}
