package rules

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestEngineApply(t *testing.T) {
	cases := []struct {
		name       string
		rules      string
		tenant     string
		in         string
		typ, unit  string
		want       Outcome
		out        string // expected labels when not dropped ("" = same as in)
		rule       string
		reasonPart string
	}{
		// relabel
		{name: "relabel/drop matches", rules: `
- name: r
  relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]`,
			in: `debug_x{a="1"}`, want: Dropped, rule: "r", reasonPart: "action drop"},
		{name: "relabel/drop no match", rules: `
- name: r
  relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]`,
			in: `x{a="1"}`, want: Kept},
		{name: "relabel/keep drops others", rules: `
- name: r
  relabel_configs: [{source_labels: [job], regex: "api", action: keep}]`,
			in: `x{job="web"}`, want: Dropped, rule: "r", reasonPart: "did not match"},
		{name: "relabel/replace rewrites", rules: `
- name: r
  relabel_configs: [{source_labels: [instance], regex: "(.*):\\d+", target_label: host, replacement: "$1"}]`,
			in: `x{instance="h1:9090"}`, want: Changed, out: `x{instance="h1:9090", host="h1"}`, rule: "r"},
		{name: "relabel/replace same value is kept", rules: `
- name: r
  relabel_configs: [{source_labels: [a], target_label: a}]`,
			in: `x{a="1"}`, want: Kept},
		{name: "relabel/labeldrop", rules: `
- name: r
  relabel_configs: [{regex: "pod_.*", action: labeldrop}]`,
			in: `x{pod_uid="1", a="2"}`, want: Changed, out: `x{a="2"}`},
		{name: "relabel/rename to empty name is dropped as invalid", rules: `
- name: r
  relabel_configs: [{source_labels: [__name__], regex: "x", target_label: __name__, replacement: ""}]`,
			in: `x{a="1"}`, want: Dropped, rule: "r", reasonPart: "no __name__"},
		{name: "relabel/rename to invalid legacy name is dropped", rules: `
rules_name_validation_scheme: legacy
rules:
- name: r
  relabel_configs: [{source_labels: [__name__], regex: "x", target_label: __name__, replacement: "1bad"}]`,
			in: `x{a="1"}`, want: Dropped, rule: "r", reasonPart: "invalid"},
		// scope
		{name: "scope/other tenant untouched", rules: `
- name: r
  scope: {tenants: [a]}
  relabel_configs: [{source_labels: [__name__], regex: "x", action: drop}]`,
			tenant: "b", in: `x`, want: Kept},
		{name: "scope/tenant matches", rules: `
- name: r
  scope: {tenants: [a]}
  relabel_configs: [{source_labels: [__name__], regex: "x", action: drop}]`,
			tenant: "a", in: `x`, want: Dropped, rule: "r"},
		{name: "scope/selector no match", rules: `
- name: r
  scope: {selector: '{job=~"api.*"}'}
  relabel_configs: [{source_labels: [__name__], regex: "x", action: drop}]`,
			in: `x{job="web"}`, want: Kept},
		{name: "scope/selector match", rules: `
- name: r
  scope: {selector: '{job=~"api.*"}'}
  relabel_configs: [{source_labels: [__name__], regex: "x", action: drop}]`,
			in: `x{job="api-1"}`, want: Dropped},
		// modes
		{name: "mode/shadow drop keeps series", rules: `
- name: r
  mode: shadow
  relabel_configs: [{source_labels: [__name__], regex: "x", action: drop}]`,
			in: `x`, want: Kept},
		{name: "mode/shadow rewrite keeps series", rules: `
- name: r
  mode: shadow
  action: rewrite
  labels: {forbidden: [user]}`,
			in: `x{user="u"}`, want: Kept},
		// naming
		{name: "naming/legacy charset drop", rules: `
- name: n
  action: drop
  naming: {charset: legacy}`,
			in: `{__name__="http.requests"}`, want: Dropped, rule: "n", reasonPart: "outside [a-zA-Z0-9_:]"},
		{name: "naming/legacy charset rewrite", rules: `
- name: n
  action: rewrite
  naming: {charset: legacy}`,
			in: `{__name__="http.requests"}`, want: Changed, out: `http_requests`},
		{name: "naming/snake_case rewrite", rules: `
- name: n
  action: rewrite
  naming: {snake_case: true}`,
			in: `httpRequestsTotal{a="1"}`, want: Changed, out: `http_requests_total{a="1"}`},
		{name: "naming/snake_case compliant", rules: `
- name: n
  action: drop
  naming: {snake_case: true}`,
			in: `http_requests_total`, want: Kept},
		{name: "naming/prefix tag", rules: `
- name: n
  action: tag
  naming: {required_prefixes: [acme_]}`,
			in: `up{a="1"}`, want: Changed, out: `up{a="1", governance_violation="n"}`},
		{name: "naming/prefix rewrite", rules: `
- name: n
  action: rewrite
  naming: {required_prefixes: [acme_, corp_]}`,
			in: `up`, want: Changed, out: `acme_up`},
		{name: "naming/prefix warn", rules: `
- name: n
  action: warn
  naming: {required_prefixes: [acme_]}`,
			in: `up`, want: Kept},
		{name: "naming/counter suffix rewrite", rules: `
- name: n
  action: rewrite
  naming: {type_suffixes: true}`,
			in: `http_requests`, typ: "counter", want: Changed, out: `http_requests_total`},
		{name: "naming/counter type unknown does nothing", rules: `
- name: n
  action: drop
  naming: {type_suffixes: true}`,
			in: `http_requests`, want: Kept},
		{name: "naming/gauge with _total rewrite", rules: `
- name: n
  action: rewrite
  naming: {type_suffixes: true}`,
			in: `queue_total`, typ: "gauge", want: Changed, out: `queue`},
		{name: "naming/histogram bucket suffix", rules: `
- name: n
  action: rewrite
  naming: {type_suffixes: true}`,
			in: `latency_seconds{le="0.1"}`, typ: "histogram", want: Changed, out: `latency_seconds_bucket{le="0.1"}`},
		{name: "naming/histogram sum ok", rules: `
- name: n
  action: drop
  naming: {type_suffixes: true}`,
			in: `latency_seconds_sum`, typ: "histogram", want: Kept},
		{name: "naming/histogram family _total dropped", rules: `
- name: n
  action: drop
  naming: {type_suffixes: true}`,
			in: `latency_total_count`, typ: "histogram", want: Dropped, reasonPart: "family name"},
		{name: "naming/unit suffix rewrite", rules: `
- name: n
  action: rewrite
  naming: {unit_suffixes: true}`,
			in: `request_duration_bucket{le="1"}`, typ: "histogram", unit: "seconds", want: Changed, out: `request_duration_seconds_bucket{le="1"}`},
		{name: "naming/unit suffix ok", rules: `
- name: n
  action: drop
  naming: {unit_suffixes: true}`,
			in: `request_size_bytes_total`, typ: "counter", unit: "bytes", want: Kept},
		{name: "naming/discouraged unit drop", rules: `
- name: n
  action: drop
  naming: {discouraged_units: [milliseconds]}`,
			in: `request_duration_milliseconds_bucket{le="1"}`, want: Dropped, reasonPart: "discouraged unit"},
		{name: "naming/discouraged unit as part of a word is fine", rules: `
- name: n
  action: drop
  naming: {discouraged_units: [milliseconds]}`,
			in: `request_millisecondsx`, want: Kept},
		// labels
		{name: "labels/required drop", rules: `
- name: l
  action: drop
  labels: {required: [team]}`,
			in: `x{a="1"}`, want: Dropped, reasonPart: `missing required label "team"`},
		{name: "labels/required present", rules: `
- name: l
  action: drop
  labels: {required: [team]}`,
			in: `x{team="t"}`, want: Kept},
		{name: "labels/forbidden rewrite", rules: `
- name: l
  action: rewrite
  labels: {forbidden: [user_id]}`,
			in: `x{user_id="42", a="1"}`, want: Changed, out: `x{a="1"}`},
		{name: "labels/allowed rewrite", rules: `
- name: l
  action: rewrite
  labels: {allowed: [job, instance]}`,
			in: `x{job="j", instance="i", extra="e"}`, want: Changed, out: `x{job="j", instance="i"}`},
		{name: "labels/allowed tag with custom label", rules: `
- name: l
  action: tag
  tag_label: policy
  labels: {allowed: [job]}`,
			in: `x{job="j", extra="e"}`, want: Changed, out: `x{job="j", extra="e", policy="l"}`},
		{name: "labels/normalise path builtins", rules: `
- name: l
  action: rewrite
  labels: {normalize: [{labels: [path], builtin: [uuid, number, hex_id]}]}`,
			in: `x{path="/users/123/orders/0f8e2a1c-9b7d-4e6f-a5c3-1d2e3f4a5b6c/blob/deadbeef00112233"}`, want: Changed,
			out: `x{path="/users/:id/orders/:uuid/blob/:hex"}`},
		{name: "labels/normalise ip and email", rules: `
- name: l
  action: rewrite
  labels: {normalize: [{labels: [client, user], builtin: [ip, email]}]}`,
			in: `x{client="10.1.2.3", user="bob@example.com"}`, want: Changed, out: `x{client=":ip", user=":email"}`},
		{name: "labels/normalise regex lowercase trim", rules: `
- name: l
  action: rewrite
  labels: {normalize: [{labels: [env], trim_space: true, lowercase: true, regex: "^production$", replacement: "prod"}]}`,
			in: `x{env="  Production "}`, want: Changed, out: `x{env="prod"}`},
		{name: "labels/normalise already normal", rules: `
- name: l
  action: drop
  labels: {normalize: [{labels: [env], trim_space: true, lowercase: true}]}`,
			in: `x{env="prod"}`, want: Kept},
		{name: "labels/normalise max length truncate", rules: `
- name: l
  action: rewrite
  labels: {normalize: [{labels: [q], max_length: 5}]}`,
			in: `x{q="abcdefgh"}`, want: Changed, out: `x{q="abcde"}`},
		{name: "labels/normalise warn keeps", rules: `
- name: l
  action: warn
  labels: {normalize: [{labels: [path], builtin: [number]}]}`,
			in: `x{path="/a/1"}`, want: Kept},
		{name: "labels/already tagged is kept", rules: `
- name: l
  action: tag
  labels: {forbidden: [x]}`,
			in: `m{x="1", governance_violation="l"}`, want: Kept},
		// limits
		{name: "limits/max labels drop", rules: `
- name: m
  action: drop
  limits: {max_labels: 2}`,
			in: `x{a="1", b="2"}`, want: Dropped, reasonPart: "exceed max_labels 2"},
		{name: "limits/max name length tag", rules: `
- name: m
  action: tag
  limits: {max_label_name_length: 5}`,
			in: `x{abcdefg="1"}`, want: Changed, out: `x{abcdefg="1", governance_violation="m"}`},
		{name: "limits/value length rewrite hash", rules: `
- name: m
  action: rewrite
  limits: {max_label_value_length: 20, value_overflow: hash}`,
			in: `x{a="aaaaaaaaaaaaaaaaaaaaaaaaa"}`, want: Changed, out: `x{a="aaa~` + "" + `HASH"}`},
		{name: "limits/within limits", rules: `
- name: m
  action: drop
  limits: {max_labels: 5, max_label_name_length: 10, max_label_value_length: 10}`,
			in: `x{a="1"}`, want: Kept},
		// ordering
		{name: "order/later rules see earlier rewrites", rules: `
- name: rename
  relabel_configs: [{source_labels: [__name__], regex: "old_(.*)", target_label: __name__, replacement: "new_$1"}]
- name: drop-new
  relabel_configs: [{source_labels: [__name__], regex: "new_.*", action: drop}]`,
			in: `old_x`, want: Dropped, rule: "drop-new"},
		{name: "order/changed reports last rule", rules: `
- name: a
  action: rewrite
  labels: {forbidden: [x]}
- name: b
  action: rewrite
  labels: {forbidden: [y]}`,
			in: `m{x="1", y="2", z="3"}`, want: Changed, out: `m{z="3"}`, rule: "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := c.rules
			if !containsLine(doc, "rules:") {
				doc = "rules:" + doc
			}
			e := compileYAML(t, doc)
			s := series(t, c.tenant, c.in, c.typ)
			s.Meta.Unit = c.unit
			orig := s.Labels.Copy()
			var tr Trace
			res := e.Apply(s, &tr)
			require.Equal(t, c.want, res.Action, "result %+v\ntrace:\n%s", res, tr.String())
			require.True(t, labels.Equal(orig, s.Labels), "Apply must not modify the input")
			resNoTrace := e.Apply(s, nil)
			require.Equal(t, res.Action, resNoTrace.Action, "tracing must not change the outcome")
			require.True(t, labels.Equal(res.Labels, resNoTrace.Labels))
			if c.rule != "" {
				require.Equal(t, c.rule, res.Rule)
			}
			if c.reasonPart != "" {
				require.Contains(t, res.Reason, c.reasonPart)
			}
			if c.want == Dropped {
				return
			}
			want := c.in
			if c.out != "" {
				want = c.out
			}
			if c.name == "limits/value length rewrite hash" {
				v := res.Labels.Get("a")
				require.Len(t, v, 20)
				require.Equal(t, "aaa~", v[:4])
				return
			}
			require.Equal(t, mustLabels(t, want).String(), res.Labels.String())
		})
	}
}

func containsLine(doc, prefix string) bool {
	for _, l := range splitLines(doc) {
		if len(l) >= len(prefix) && l[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// metricsRulesYAML is a rule of every kind the rule metrics count (drop,
// shadow, warn with an unknown type, a relabelling that invalidates).
const metricsRulesYAML = `
rules:
- name: drop-debug
  relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]
- name: shadow-prefix
  mode: shadow
  action: drop
  naming: {required_prefixes: [acme_]}
- name: counters
  action: warn
  naming: {type_suffixes: true}
- name: renamer
  relabel_configs: [{source_labels: [__name__], regex: "x", target_label: __name__, replacement: ""}]
`

func TestEngineMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	cfg, err := LoadConfig([]byte(metricsRulesYAML))
	require.NoError(t, err)
	e, err := Compile(cfg, m)
	require.NoError(t, err)
	for _, s := range []*Series{
		series(t, "", `debug_a`, ""),
		series(t, "", `debug_b`, ""),
		series(t, "", `up`, "gauge"),
		series(t, "", `acme_up`, ""),
		series(t, "", `requests`, "counter"),
		series(t, "", `x`, "gauge"),
	} {
		e.Apply(s, nil)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(m.series.WithLabelValues("drop-debug", "drop", "enforce")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.series.WithLabelValues("drop-debug", "rewrite", "enforce")))
	require.Equal(t, 3.0, testutil.ToFloat64(m.series.WithLabelValues("shadow-prefix", "drop", "shadow")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.series.WithLabelValues("counters", "warn", "enforce")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.typeUnknown.WithLabelValues("counters")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.invalidVec.WithLabelValues("renamer")))
	// Only the actions each rule can take are exported.
	n, err := testutil.GatherAndCount(reg, "promgov_rule_series_total")
	require.NoError(t, err)
	require.Equal(t, 2+1+1+2, n)
}

func TestEngineTrace(t *testing.T) {
	e := compileYAML(t, `
rules:
- name: team-a-only
  scope: {tenants: [team-a]}
  relabel_configs: [{source_labels: [__name__], regex: ".*", action: drop}]
- name: shadow-prefix
  mode: shadow
  action: tag
  naming: {required_prefixes: [acme_]}
- name: strip-user
  action: rewrite
  labels: {forbidden: [user_id]}
- name: drop-debug
  relabel_configs: [{source_labels: [__name__], regex: "debug_.*", action: drop}]
- name: never-reached
  action: warn
  labels: {required: [team]}
`)
	var tr Trace
	res := e.Apply(series(t, "team-b", `debug_queue{user_id="7"}`, ""), &tr)
	require.Equal(t, Dropped, res.Action)
	require.Equal(t, "drop-debug", res.Rule)
	require.Len(t, tr.Steps, 4)
	require.Equal(t, EffectOutOfScope, tr.Steps[0].Effect)
	require.Equal(t, EffectWouldTag, tr.Steps[1].Effect)
	require.Equal(t, `{__name__="debug_queue", governance_violation="shadow-prefix", user_id="7"}`, tr.Steps[1].After)
	require.Equal(t, EffectRewritten, tr.Steps[2].Effect)
	require.Equal(t, `{__name__="debug_queue"}`, tr.Steps[2].After)
	require.Equal(t, EffectDropped, tr.Steps[3].Effect)
	require.Equal(t, `{__name__="debug_queue"}`, tr.Steps[3].Before)
	t.Logf("trace of a dropped series:\n%s", tr.String())
	tr.Reset()
	require.Empty(t, tr.Steps)
}

func TestEngineNoAllocsForUntouchedSeries(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with -race (sync.Pool drops items)")
	}
	e := loadRealistic(t)
	s := series(t, "team-a", untouched, "counter")
	require.Equal(t, Kept, e.Apply(s, nil).Action)
	allocs := testing.AllocsPerRun(100, func() { e.Apply(s, nil) })
	require.Zero(t, allocs)

	empty, err := Compile(DefaultConfig(), nil)
	require.NoError(t, err)
	require.Zero(t, testing.AllocsPerRun(100, func() { empty.Apply(s, nil) }))
}

func TestEngineConcurrentApply(t *testing.T) {
	e := loadRealistic(t)
	inputs := []string{untouched, `debug_x{job="a"}`, `http_requests_total{path="/u/1", job="api", team="t"}`}
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				s := series(t, "team-a", inputs[(i+w)%len(inputs)], "counter")
				var tr Trace
				a := e.Apply(s, &tr)
				b := e.Apply(s, nil)
				if a.Action != b.Action || !labels.Equal(a.Labels, b.Labels) {
					t.Errorf("inconsistent results %v vs %v", a, b)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
