package main

import (
	"context"
	"os"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin"
	"github.com/promgov/promgov/pkg/plugin/plugintest"
	"github.com/promgov/promgov/pkg/plugin/sdk"
)

var builder *plugintest.Builder

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m, &builder)) }

func load(t testing.TB, config string) *plugin.Plugin {
	t.Helper()
	p, err := plugin.Load(context.Background(), "requireteam", plugin.Config{Module: builder.Build(t, "."), Config: config}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(context.Background())) })
	return p
}

// TestRequireTeam: the example's verdicts, through the SDK's codec in plain
// Go and through the built module in the host, are the same.
func TestRequireTeam(t *testing.T) {
	series := []labels.Labels{
		labels.FromStrings("__name__", "up", "team", "core"),
		labels.FromStrings("__name__", "up", "team", "payments"),
		labels.FromStrings("__name__", "up", "team", "marketing"),
		labels.FromStrings("__name__", "up"),
		labels.FromStrings("__name__", "up", "owner", "core"),
	}
	cases := map[string]struct {
		config string
		want   []plugin.Verdict
	}{
		"drop (default)": {config: `{"teams": ["core", "payments"]}`, want: []plugin.Verdict{
			{Action: plugin.Keep}, {Action: plugin.Keep},
			{Action: plugin.Drop, Reason: "team marketing is not a known team"},
			{Action: plugin.Drop, Reason: "no team label"},
			{Action: plugin.Drop, Reason: "no team label"},
		}},
		"tag": {config: `{"teams": ["core", "payments"], "action": "tag"}`, want: []plugin.Verdict{
			{Action: plugin.Keep}, {Action: plugin.Keep},
			{Action: plugin.Tag, Labels: labels.FromStrings("team_violation", "unknown"), Reason: "team marketing is not a known team"},
			{Action: plugin.Tag, Labels: labels.FromStrings("team_violation", "missing"), Reason: "no team label"},
			{Action: plugin.Tag, Labels: labels.FromStrings("team_violation", "missing"), Reason: "no team label"},
		}},
		"other label names": {config: `{"teams": ["core"], "label": "owner", "action": "tag", "tag_label": "bad_owner"}`, want: []plugin.Verdict{
			{Action: plugin.Tag, Labels: labels.FromStrings("bad_owner", "missing"), Reason: "no owner label"},
			{Action: plugin.Tag, Labels: labels.FromStrings("bad_owner", "missing"), Reason: "no owner label"},
			{Action: plugin.Tag, Labels: labels.FromStrings("bad_owner", "missing"), Reason: "no owner label"},
			{Action: plugin.Tag, Labels: labels.FromStrings("bad_owner", "missing"), Reason: "no owner label"},
			{Action: plugin.Keep},
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := make([]plugin.Input, len(series))
			for i, ls := range series {
				in[i] = plugin.Input{Tenant: "t", Labels: ls, Type: model.MetricTypeGauge}
			}
			out, err := load(t, tc.config).Eval(context.Background(), in, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, out)

			var p policy
			require.NoError(t, p.configure([]byte(tc.config)))
			for i, ls := range series {
				v := p.evaluate(toSeries("t", ls))
				require.Equal(t, tc.want[i].Action, v.Action)
				require.Equal(t, tc.want[i].Reason, v.Reason)
			}
		})
	}
}

func TestRequireTeamConfigErrors(t *testing.T) {
	cases := map[string]string{
		"not json":       `teams: [core]`,
		"no teams":       `{}`,
		"unknown field":  `{"teams": ["core"], "tems": 1}`,
		"unknown action": `{"teams": ["core"], "action": "warn"}`,
	}
	for name, config := range cases {
		t.Run(name, func(t *testing.T) {
			var p policy
			require.ErrorContains(t, p.configure([]byte(config)), "requireteam: ")
		})
	}
}

func toSeries(tenant string, ls labels.Labels) sdk.Series {
	s := sdk.Series{Tenant: tenant, Type: "gauge"}
	ls.Range(func(l labels.Label) { s.Labels = append(s.Labels, sdk.Label{Name: l.Name, Value: l.Value}) })
	return s
}
