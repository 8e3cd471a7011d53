package plugin

import (
	"context"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

const requireTeamPkg = "github.com/promgov/promgov/examples/plugins/requireteam"

func loadT(t testing.TB, name string, cfg Config, m *Metrics) *Plugin {
	t.Helper()
	p, err := Load(context.Background(), name, cfg, m, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	return p
}

func TestRequireTeamSmoke(t *testing.T) {
	path := builder.Build(t, requireTeamPkg)
	p := loadT(t, "requireteam", Config{Module: path, Config: `{"teams":["core"], "action":"tag"}`}, nil)
	in := []Input{
		{Tenant: "a", Labels: labels.FromStrings("__name__", "up", "team", "core"), Type: model.MetricTypeGauge},
		{Tenant: "a", Labels: labels.FromStrings("__name__", "up", "team", "x")},
		{Tenant: "a", Labels: labels.FromStrings("__name__", "up")},
	}
	out, err := p.Eval(context.Background(), in, nil)
	require.NoError(t, err)
	t.Log(out)
}
