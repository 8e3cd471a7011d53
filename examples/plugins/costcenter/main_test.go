package main

import (
	"context"
	"os"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/plugin"
	"github.com/promgov/promgov/pkg/plugin/plugintest"
)

var builder *plugintest.Builder

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m, &builder)) }

// TestCostCenter: the built module derives cost_center from namespace.
func TestCostCenter(t *testing.T) {
	series := []labels.Labels{
		labels.FromStrings("__name__", "up", "namespace", "checkout"),
		labels.FromStrings("__name__", "up", "namespace", "checkout", "cost_center", "cc-1001"),
		labels.FromStrings("__name__", "up", "namespace", "checkout", "cost_center", "wrong"),
		labels.FromStrings("__name__", "up", "namespace", "elsewhere"),
		labels.FromStrings("__name__", "up"),
	}
	tag := func(cc, reason string) plugin.Verdict {
		return plugin.Verdict{Action: plugin.Tag, Labels: labels.FromStrings("cost_center", cc), Reason: reason}
	}
	cases := map[string]struct {
		config string
		want   []plugin.Verdict
	}{
		"mapping only": {config: `{"mapping": {"checkout": "cc-1001"}}`, want: []plugin.Verdict{
			tag("cc-1001", "namespace checkout"), {Action: plugin.Keep}, tag("cc-1001", "namespace checkout"),
			{Action: plugin.Keep}, {Action: plugin.Keep},
		}},
		"with a default": {config: `{"mapping": {"checkout": "cc-1001"}, "default": "cc-none"}`, want: []plugin.Verdict{
			tag("cc-1001", "namespace checkout"), {Action: plugin.Keep}, tag("cc-1001", "namespace checkout"),
			tag("cc-none", "namespace elsewhere is not mapped"), tag("cc-none", "namespace  is not mapped"),
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := plugin.Load(context.Background(), "costcenter", plugin.Config{Module: builder.Build(t, "."), Config: tc.config}, nil, nil)
			require.NoError(t, err)
			defer func() { require.NoError(t, p.Close(context.Background())) }()
			in := make([]plugin.Input, len(series))
			for i, ls := range series {
				in[i] = plugin.Input{Tenant: "t", Labels: ls}
			}
			out, err := p.Eval(context.Background(), in, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, out)
		})
	}
}

func TestCostCenterConfigErrors(t *testing.T) {
	for name, config := range map[string]string{
		"not json":      `mapping: {}`,
		"empty mapping": `{"mapping": {}}`,
		"empty centre":  `{"mapping": {"a": ""}}`,
		"unknown field": `{"mapping": {"a": "b"}, "defaults": "x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			var p policy
			require.ErrorContains(t, p.configure([]byte(config)), "costcenter: ")
		})
	}
}
