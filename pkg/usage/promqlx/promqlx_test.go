package promqlx

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSubstitute(t *testing.T) {
	tests := map[string]struct {
		in, want string
		numbers  bool
	}{
		"no vars":           {in: `up`, want: `up`},
		"rate interval":     {in: `rate(x[$__rate_interval])`, want: `rate(x[5m])`},
		"braced var in str": {in: `x{job=~"${job:regex}"}`, want: `x{job=~"` + Placeholder + `"}`},
		"old style var":     {in: `x{job="[[job]]"}`, want: `x{job="` + Placeholder + `"}`},
		"var as range":      {in: `rate(x[$interval])`, want: `rate(x[5m])`},
		"subquery":          {in: `max_over_time(x[$__range:$__interval])`, want: `max_over_time(x[5m:5m])`},
		"offset":            {in: `x offset $off`, want: `x offset 5m`},
		"range seconds":     {in: `x[${__range_s}s]`, want: `x[1s]`},
		"number var":        {in: `topk($n, x)`, want: `topk(1, x)`, numbers: true},
		"label name var":    {in: `sum by ($group) (x)`, want: `sum by (` + Placeholder + `) (x)`},
		"at modifier":       {in: `x @ ${__to:date:seconds}`, want: `x @ 1`},
		"metric name var":   {in: `${metric}_total`, want: Placeholder + `_total`},
		"dollar in regex":   {in: `x{a=~"foo$"}`, want: `x{a=~"foo$"}`},
		"interval ms":       {in: `x / $__interval_ms`, want: `x / 1`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Substitute(tc.in, tc.numbers))
		})
	}
}

func TestExtract(t *testing.T) {
	type metric struct {
		labels []string
		all    bool
	}
	tests := map[string]struct {
		expr     string
		metrics  map[string]metric
		patterns []string
	}{
		"plain selector": {
			expr:    `up{job="x"}`,
			metrics: map[string]metric{"up": {labels: []string{"job"}, all: true}},
		},
		"sum by": {
			expr:    `sum by (cluster) (rate(http_requests_total{code=~"5.."}[$__rate_interval]))`,
			metrics: map[string]metric{"http_requests_total": {labels: []string{"cluster", "code"}}},
		},
		"sum without keeps the rest": {
			expr:    `sum without (instance) (x)`,
			metrics: map[string]metric{"x": {labels: []string{"instance"}, all: true}},
		},
		"topk does not reduce": {
			expr:    `topk(5, sum by (pod) (x))`,
			metrics: map[string]metric{"x": {labels: []string{"pod"}}},
		},
		"binary on group_left": {
			expr: `sum by (ns) (a * on (pod) group_left (node) b)`,
			metrics: map[string]metric{
				"a": {labels: []string{"node", "ns", "pod"}},
				"b": {labels: []string{"node", "ns", "pod"}},
			},
		},
		"label_replace source": {
			expr:    `sum by (host) (label_replace(x, "host", "$1", "instance", "(.*):.*"))`,
			metrics: map[string]metric{"x": {labels: []string{"host", "instance"}}},
		},
		"label_join sources": {
			expr:    `count(label_join(x, "id", "-", "a", "b"))`,
			metrics: map[string]metric{"x": {labels: []string{"a", "b"}}},
		},
		"name equality matcher": {
			expr:    `sum({__name__="up", job="a"})`,
			metrics: map[string]metric{"up": {labels: []string{"job"}}},
		},
		"name regex matcher": {
			expr:     `count({__name__=~"node_.+"})`,
			metrics:  map[string]metric{},
			patterns: []string{"node_.+"},
		},
		"variable in metric name": {
			expr:     `sum(rate(${metric}_total[5m]))`,
			metrics:  map[string]metric{},
			patterns: []string{".*_total"},
		},
		"variable as name value": {
			expr:     `count({__name__=~"$m"})`,
			metrics:  map[string]metric{},
			patterns: []string{".*"},
		},
		"absent reduces": {
			expr:    `absent(up{job="x"})`,
			metrics: map[string]metric{"up": {labels: []string{"job"}}},
		},
		"number variable": {
			expr:    `topk($n, sum by (a) (x))`,
			metrics: map[string]metric{"x": {labels: []string{"a"}}},
		},
		"label name variable dropped": {
			expr:    `sum by ($g, b) (x)`,
			metrics: map[string]metric{"x": {labels: []string{"b"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := Extract(tc.expr)
			require.NoError(t, err)
			require.Len(t, r.Metrics, len(tc.metrics))
			for n, want := range tc.metrics {
				got, ok := r.Metrics[n]
				require.True(t, ok, "metric %s missing", n)
				require.Equal(t, want.labels, got.LabelNames(), "labels of %s", n)
				require.Equal(t, want.all, got.AllLabels, "all labels of %s", n)
			}
			var pats []string
			for _, p := range r.Patterns {
				pats = append(pats, p.Regex)
			}
			require.Equal(t, tc.patterns, pats)
		})
	}
}

func TestExtractError(t *testing.T) {
	_, err := Extract(`sum(rate(x[5m])`)
	require.Error(t, err)
}

func TestPatternMatches(t *testing.T) {
	tests := map[string]struct {
		p    Pattern
		name string
		want bool
	}{
		"regex match":     {p: Pattern{Regex: "node_.+"}, name: "node_load1", want: true},
		"regex anchored":  {p: Pattern{Regex: "load"}, name: "node_load1", want: false},
		"negative":        {p: Pattern{Regex: "up", Negative: true}, name: "up", want: false},
		"negative other":  {p: Pattern{Regex: "up", Negative: true}, name: "down", want: true},
		"invalid is safe": {p: Pattern{Regex: "("}, name: "x", want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.p.Matches(tc.name))
		})
	}
}

func TestExtractVariableQuery(t *testing.T) {
	tests := map[string]struct {
		q        string
		metrics  map[string][]string
		patterns []string
	}{
		"label_values with selector": {q: `label_values(kube_pod_info{cluster="$cluster"}, pod)`, metrics: map[string][]string{"kube_pod_info": {"cluster", "pod"}}},
		"label_values label only":    {q: `label_values(job)`, metrics: map[string][]string{}},
		"query_result":               {q: `query_result(topk(5, sum by (ns) (x)))`, metrics: map[string][]string{"x": {"ns"}}},
		"metrics regex":              {q: `metrics(node_.*)`, metrics: map[string][]string{}, patterns: []string{".*(?:node_.*).*"}},
		"plain query":                {q: `up{job="a"}`, metrics: map[string][]string{"up": {"job"}}},
		"label_names":                {q: `label_names(up)`, metrics: map[string][]string{"up": {}}},
		"selector with comma":        {q: `label_values(x{a="1", b=~"2|3"}, c)`, metrics: map[string][]string{"x": {"a", "b", "c"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := ExtractVariableQuery(tc.q)
			require.NoError(t, err)
			require.Len(t, r.Metrics, len(tc.metrics))
			for n, labels := range tc.metrics {
				require.Contains(t, r.Metrics, n)
				require.ElementsMatch(t, labels, r.Metrics[n].LabelNames())
			}
			var pats []string
			for _, p := range r.Patterns {
				pats = append(pats, p.Regex)
			}
			require.Equal(t, tc.patterns, pats)
		})
	}
}

func TestLegendLabels(t *testing.T) {
	require.Equal(t, []string{"instance", "job"}, LegendLabels("{{instance}} - {{ job }} {{}}"))
	require.Empty(t, LegendLabels("static"))
}

func FuzzExtract(f *testing.F) {
	for _, s := range []string{`up`, `sum by (a) (rate(x{b="$v"}[$__rate_interval]))`, `{__name__=~"x.*"}`, `${m}_total offset $o`, `[[a]]`, `label_values(x, y)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := Extract(s); err == nil {
			require.NotNil(t, r)
		}
		_, _ = ExtractVariableQuery(s)
	})
}

func BenchmarkExtract(b *testing.B) {
	expr := `histogram_quantile(0.99, sum by (le, job) (rate(apiserver_request_duration_seconds_bucket{cluster="$cluster", verb=~"LIST|GET"}[$__rate_interval])))`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(expr); err != nil {
			b.Fatal(err)
		}
	}
}

func TestVariableQueriesReadOnlyNamedLabels(t *testing.T) {
	r, err := ExtractVariableQuery(`label_values(up{job="a"}, instance)`)
	require.NoError(t, err)
	require.False(t, r.Metrics["up"].AllLabels)
	r, err = ExtractVariableQuery(`query_result(up)`)
	require.NoError(t, err)
	require.True(t, r.Metrics["up"].AllLabels, "query_result returns whole series")
}
