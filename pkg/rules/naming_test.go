package rules

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func TestSnakeCase(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"http_requests_total", "http_requests_total", true},
		{"httpRequestsTotal", "http_requests_total", false},
		{"HTTPRequests", "httprequests", false},
		{"http-requests.total", "http_requests_total", false},
		{"http__requests", "http_requests", false},
		{"_private", "private", false},
		{"trailing_", "trailing", false},
		{"9lives", "m_9lives", false},
		{"rule:job:rate5m", "rule:job:rate5m", true},
		{"Ünïcode", "n_code", false},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			require.Equal(t, c.ok, isSnakeCase(c.in))
			got := toSnakeCase(c.in)
			require.Equal(t, c.want, got)
			require.True(t, isSnakeCase(got), got)
		})
	}
}

func TestToLegacy(t *testing.T) {
	for in, want := range map[string]string{
		"ok_name:x":    "ok_name:x",
		"http.request": "http_request",
		"1abc":         "_1abc",
		"sp ace":       "sp_ace",
		"日本":           "__",
	} {
		got := toLegacy(in)
		require.Equal(t, want, got, in)
		require.True(t, model.LegacyValidation.IsValidMetricName(got))
	}
}

func TestHasToken(t *testing.T) {
	require.True(t, hasToken("a_ms_b", "ms"))
	require.True(t, hasToken("ms_b", "ms"))
	require.True(t, hasToken("a_ms", "ms"))
	require.True(t, hasToken("ms", "ms"))
	require.False(t, hasToken("a_msx", "ms"))
	require.False(t, hasToken("xms_b", "ms"))
	require.True(t, hasToken("xms_ms", "ms"))
	require.False(t, hasToken("", "ms"))
}

func TestTypeSuffixes(t *testing.T) {
	cases := []struct {
		name, metric string
		typ          model.MetricType
		le           bool
		fixed        string
	}{
		{"counter ok", "a_total", model.MetricTypeCounter, false, "a_total"},
		{"counter missing", "a", model.MetricTypeCounter, false, "a_total"},
		{"info", "build", model.MetricTypeInfo, false, "build_info"},
		{"gauge total", "temp_total", model.MetricTypeGauge, false, "temp"},
		{"histogram bucket", "lat_seconds", model.MetricTypeHistogram, true, "lat_seconds_bucket"},
		{"histogram count ok", "lat_seconds_count", model.MetricTypeHistogram, false, "lat_seconds_count"},
		{"histogram total family", "lat_total_sum", model.MetricTypeHistogram, false, "lat_sum"},
		{"summary ok", "rpc_seconds", model.MetricTypeSummary, false, "rpc_seconds"},
		{"summary total", "rpc_total_count", model.MetricTypeSummary, false, "rpc_count"},
		{"gauge histogram bucket", "q", model.MetricTypeGaugeHistogram, true, "q_bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problem := typeSuffixProblem(c.metric, c.le, c.typ)
			require.Equal(t, c.fixed != c.metric, problem != "", problem)
			got := fixTypeSuffix(c.metric, c.le, c.typ)
			require.Equal(t, c.fixed, got)
			require.Empty(t, typeSuffixProblem(got, c.le, c.typ))
		})
	}
}
