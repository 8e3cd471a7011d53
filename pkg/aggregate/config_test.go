package aggregate

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml    string
		wantErr string // substring; "" for valid
	}{
		"valid by":                             {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s}\n"},
		"valid gauge":                          {yaml: "aggregations:\n- {name: a, match: 'm{job=\"x\"}', without: [pod], interval: 1m, type: gauge, outputs: [sum, max, last]}\n"},
		"no name":                              {yaml: "aggregations:\n- {match: m, by: [svc], interval: 30s}\n", wantErr: "name: required"},
		"duplicate name":                       {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s}\n- {name: a, match: n, by: [svc], interval: 30s}\n", wantErr: "name \"a\" is used"},
		"by and without":                       {yaml: "aggregations:\n- {name: a, match: m, by: [svc], without: [pod], interval: 30s}\n", wantErr: "by and without"},
		"neither":                              {yaml: "aggregations:\n- {name: a, match: m, interval: 30s}\n", wantErr: "by or without"},
		"unknown output":                       {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, outputs: [p99]}\n", wantErr: "outputs: unknown output \"p99\""},
		"output wrong type":                    {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, type: counter, outputs: [max]}\n", wantErr: "a counter can only be aggregated to sum"},
		"no metric name":                       {yaml: "aggregations:\n- {name: a, match: '{job=\"x\"}', by: [svc], interval: 30s}\n", wantErr: "name the metric"},
		"bad selector":                         {yaml: "aggregations:\n- {name: a, match: 'm{', by: [svc], interval: 30s}\n", wantErr: "match \"m{\""},
		"interval":                             {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 500ms}\n", wantErr: "interval 500ms"},
		"max_delay":                            {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 1s, max_delay: 1m}\n", wantErr: "max_delay"},
		"mode":                                 {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, mode: dry}\n", wantErr: "mode \"dry\""},
		"type":                                 {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, type: info}\n", wantErr: "type \"info\""},
		"without le":                           {yaml: "aggregations:\n- {name: a, match: m, without: [le], interval: 30s}\n", wantErr: "le cannot be removed"},
		"by __name__":                          {yaml: "aggregations:\n- {name: a, match: m, by: [__name__], interval: 30s}\n", wantErr: "by/without"},
		"unknown field":                        {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, keep: true}\n", wantErr: "field keep not found"},
		"output_name":                          {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, output_name: ''}\n"},
		"marker in by":                         {yaml: "aggregations:\n- {name: a, match: m, by: [svc], interval: 30s, marker_label: svc}\n", wantErr: "marker_label"},
		"negative groups":                      {yaml: "aggregations_max_groups: -1\n", wantErr: "aggregations_max_groups"},
		"overflow delay":                       {yaml: "aggregations_overflow_interval: 10s\naggregations_overflow_max_delay: 3s\n"},
		"overflow delay >10 intervals":         {yaml: "aggregations_overflow_interval: 10s\naggregations_overflow_max_delay: 101s\n", wantErr: "aggregations_overflow_max_delay 1m41s: must be between 0"},
		"overflow delay >10 default intervals": {yaml: "aggregations_overflow_max_delay: 6m\n", wantErr: "10 overflow intervals (5m0s)"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load([]byte(tc.yaml))
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestOutputNames(t *testing.T) {
	for name, tc := range map[string]struct {
		rule RuleConfig
		want []string
	}{
		"by":           {RuleConfig{By: []string{"service", "status"}}, []string{"service_status:http_requests_total:sum"}},
		"without":      {RuleConfig{Without: []string{"pod", "instance"}}, []string{"http_requests_total:sum_without_pod_instance"}},
		"named":        {RuleConfig{By: []string{"a"}, OutputName: "x"}, []string{"x"}},
		"named gauges": {RuleConfig{By: []string{"a"}, OutputName: "x", Outputs: []string{"min", "max"}}, []string{"x:min", "x:max"}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.rule.OutputNames("http_requests_total"))
		})
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("aggregations:\n- {name: a, match: m, by: [svc], interval: 30s}\n"))
	f.Add([]byte("aggregations:\n- {name: a, match: 'm{job=~\"x.*\"}', without: [pod], interval: 1m, max_delay: 5s, type: gauge, outputs: [sum, max, last], keep_input: true, mode: shadow, tenants: [t], marker_label: __agg__}\n"))
	f.Add([]byte("aggregations_max_groups: 5\naggregations_snapshot_path: /x\n"))
	f.Add([]byte("aggregations_overflow_interval: 10s\naggregations_overflow_max_delay: 4s\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Load(b)
		if err != nil {
			return
		}
		// What loads compiles.
		if _, err := New(c, nil, nil); err != nil {
			t.Fatalf("valid configuration does not compile: %v", err)
		}
	})
}
