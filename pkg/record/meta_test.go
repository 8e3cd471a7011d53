package record

import (
	"testing"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func TestFamilyName(t *testing.T) {
	tests := map[string]struct {
		name string
		typ  writev2.Metadata_MetricType
		want string
	}{
		"counter strips _total":        {"reqs_total", writev2.Metadata_METRIC_TYPE_COUNTER, "reqs"},
		"gauge keeps _total":           {"reqs_total", writev2.Metadata_METRIC_TYPE_GAUGE, "reqs_total"},
		"histogram strips _bucket":     {"lat_bucket", writev2.Metadata_METRIC_TYPE_HISTOGRAM, "lat"},
		"histogram strips _sum":        {"lat_sum", writev2.Metadata_METRIC_TYPE_HISTOGRAM, "lat"},
		"gaugehistogram strips _count": {"lat_count", writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM, "lat"},
		"summary strips _count":        {"lat_count", writev2.Metadata_METRIC_TYPE_SUMMARY, "lat"},
		"summary keeps _bucket":        {"lat_bucket", writev2.Metadata_METRIC_TYPE_SUMMARY, "lat_bucket"},
		"native histogram unchanged":   {"lat", writev2.Metadata_METRIC_TYPE_HISTOGRAM, "lat"},
		"unknown unchanged":            {"x_total", writev2.Metadata_METRIC_TYPE_UNSPECIFIED, "x_total"},
		"bare suffix unchanged":        {"_total", writev2.Metadata_METRIC_TYPE_COUNTER, "_total"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, FamilyName(tc.name, tc.typ))
		})
	}
}
