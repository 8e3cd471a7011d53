package rules

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestRelabelCompatibility runs the same relabel configs through
// prometheus/model/relabel directly and through the engine and requires
// identical results. The one documented difference: a result that is not a
// valid series (no or invalid __name__) is dropped by the engine.
func TestRelabelCompatibility(t *testing.T) {
	configs := map[string]string{
		"drop":            `[{source_labels: [__name__], regex: "go_.*", action: drop}]`,
		"drop multi":      `[{source_labels: [job, env], separator: "/", regex: "api/(dev|test)", action: drop}]`,
		"keep":            `[{source_labels: [job], regex: "api|web", action: keep}]`,
		"keep missing":    `[{source_labels: [nope], regex: "", action: keep}]`,
		"replace":         `[{source_labels: [instance], regex: "([^:]+):.*", target_label: host, replacement: "$1"}]`,
		"replace default": `[{source_labels: [job], target_label: job_copy}]`,
		"replace static":  `[{target_label: cluster, replacement: eu-1}]`,
		"replace delete":  `[{source_labels: [env], regex: "dev", target_label: env, replacement: ""}]`,
		"replace name":    `[{source_labels: [__name__], regex: "(.*)_total", target_label: __name__, replacement: "${1}_count_total"}]`,
		"replace tgt var": `[{source_labels: [job], regex: "(.*)", target_label: "copy_${1}", replacement: "x"}]`,
		"lowercase":       `[{source_labels: [Mixed], target_label: mixed, action: lowercase}]`,
		"uppercase":       `[{source_labels: [env], target_label: env_upper, action: uppercase}]`,
		"lowercase self":  `[{source_labels: [env], target_label: env, action: lowercase}]`,
		"uppercase self":  `[{source_labels: [Mixed], target_label: Mixed, action: uppercase}]`,
		"hashmod":         `[{source_labels: [instance], modulus: 8, target_label: shard, action: hashmod}]`,
		"labelmap":        `[{regex: "__meta_(.+)", replacement: "meta_$1", action: labelmap}]`,
		"labeldrop":       `[{regex: "pod_.*|request_id", action: labeldrop}]`,
		"labelkeep":       `[{regex: "__name__|job|instance", action: labelkeep}]`,
		"keepequal":       `[{source_labels: [a], target_label: b, action: keepequal}]`,
		"dropequal":       `[{source_labels: [a], target_label: b, action: dropequal}]`,
		"drop name":       `[{regex: "__name__", action: labeldrop}]`,
		"chain": `[{source_labels: [__name__], regex: "old_(.*)", target_label: __name__, replacement: "new_$1"},
		           {source_labels: [__name__], regex: "new_debug.*", action: drop},
		           {regex: "tmp_.*", action: labeldrop},
		           {source_labels: [job, instance], separator: "@", target_label: origin}]`,
		"regex empty":   `[{source_labels: [missing], regex: "", target_label: was_empty, replacement: "yes"}]`,
		"regex newline": `[{source_labels: [msg], regex: "a.b", action: drop}]`,
	}
	inputs := []labels.Labels{
		labels.FromStrings("__name__", "go_goroutines", "job", "api", "instance", "h1:9090"),
		labels.FromStrings("__name__", "http_requests_total", "job", "api", "env", "dev", "instance", "h2:80", "pod_uid", "u1"),
		labels.FromStrings("__name__", "http_requests_total", "job", "web", "env", "prod", "Mixed", "MiXeD"),
		labels.FromStrings("__name__", "old_debug_queue", "job", "worker", "tmp_x", "1"),
		labels.FromStrings("__name__", "old_queue", "job", "worker", "instance", "w:1", "tmp_y", "2"),
		labels.FromStrings("__name__", "x", "a", "1", "b", "1"),
		labels.FromStrings("__name__", "x", "a", "1", "b", "2", "__meta_zone", "z1", "request_id", "r"),
		labels.FromStrings("__name__", "y", "msg", "a\nb"),
		labels.FromStrings("__name__", "utf8.name", "job", "api"),
	}
	for _, scheme := range []string{"utf8", "legacy"} {
		for name, cfgYAML := range configs {
			t.Run(scheme+"/"+name, func(t *testing.T) {
				var cfgs []*relabel.Config
				require.NoError(t, yaml.Unmarshal([]byte(cfgYAML), &cfgs))
				vs := model.UTF8Validation
				if scheme == "legacy" {
					vs = model.LegacyValidation
				}
				for _, c := range cfgs {
					c.NameValidationScheme = vs
					require.NoError(t, c.Validate(vs))
				}
				e := compileYAML(t, fmt.Sprintf("rules_name_validation_scheme: %s\nrules:\n- name: r\n  relabel_configs: %s\n", scheme, cfgYAML))
				// Twice: the second pass finds the replace outcomes the
				// first one remembered.
				for _, in := range append(append([]labels.Labels(nil), inputs...), inputs...) {
					lb := labels.NewBuilder(in)
					keep := relabel.ProcessBuilder(lb, cfgs...)
					want := lb.Labels()

					res := e.Apply(&Series{Labels: in}, nil)
					switch {
					case !keep:
						require.Equal(t, Dropped, res.Action, "input %s", in)
						require.Equal(t, "r", res.Rule)
					case labels.Equal(want, in):
						require.Equal(t, Kept, res.Action, "input %s", in)
						require.Equal(t, in.String(), res.Labels.String())
					case e.invalid(want) != "":
						require.Equal(t, Dropped, res.Action, "input %s -> %s", in, want)
						require.Contains(t, res.Reason, "invalid after rule")
					default:
						require.Equal(t, Changed, res.Action, "input %s", in)
						require.Equal(t, want.String(), res.Labels.String(), "input %s", in)
					}
				}
			})
		}
	}
}
