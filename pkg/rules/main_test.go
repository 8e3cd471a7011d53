package rules

import (
	"os"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin/plugintest"
)

// plugins builds the example WebAssembly plugins once per test binary.
var plugins *plugintest.Builder

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m, &plugins)) }

// compileYAML loads and compiles a rules config document.
func compileYAML(t testing.TB, doc string) *Engine {
	t.Helper()
	cfg, err := LoadConfig([]byte(doc))
	require.NoError(t, err)
	e, err := Compile(cfg, nil)
	require.NoError(t, err)
	return e
}

// series builds a Series from PromQL notation.
func series(t testing.TB, tenant, s string, typ string) *Series {
	t.Helper()
	ls, err := parseSeries(s)
	require.NoError(t, err)
	return &Series{Tenant: tenant, Labels: ls, Meta: Metadata{Type: modelType(typ)}}
}

func mustLabels(t testing.TB, s string) labels.Labels {
	t.Helper()
	ls, err := parseSeries(s)
	require.NoError(t, err)
	return ls
}

func modelType(s string) model.MetricType { return model.MetricType(s) }

type modelLabelName = model.LabelName

func scheme() model.ValidationScheme { return model.UTF8Validation }

// labelsOK reports whether name and value make a valid test series.
func labelsOK(name, value string) bool {
	return model.UTF8Validation.IsValidMetricName(name) && model.LabelValue(value).IsValid() && value != ""
}
