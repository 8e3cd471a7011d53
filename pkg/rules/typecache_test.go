package rules

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

func TestTypeCacheLookup(t *testing.T) {
	c := NewTypeCache(100)
	c.Set("t1", "http_requests", Metadata{Type: model.MetricTypeCounter})
	c.Set("t1", "latency_seconds", Metadata{Type: model.MetricTypeHistogram, Unit: "seconds"})
	cases := map[string]struct {
		tenant, name string
		want         model.MetricType
		ok           bool
	}{
		"exact":            {"t1", "http_requests", model.MetricTypeCounter, true},
		"counter suffix":   {"t1", "http_requests_total", model.MetricTypeCounter, true},
		"histogram bucket": {"t1", "latency_seconds_bucket", model.MetricTypeHistogram, true},
		"histogram count":  {"t1", "latency_seconds_count", model.MetricTypeHistogram, true},
		"other tenant":     {"t2", "http_requests", "", false},
		"unknown family":   {"t1", "nope_total", "", false},
		"suffix only name": {"t1", "_total", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			md, ok := c.Lookup(tc.tenant, tc.name)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, md.Type)
		})
	}
}

func TestTypeCacheBounded(t *testing.T) {
	c := NewTypeCache(32) // 2 per shard and generation
	for i := range 1000 {
		c.Set("t", fmt.Sprintf("m%d", i), Metadata{Type: model.MetricTypeGauge})
	}
	require.LessOrEqual(t, c.Len(), 2*32)
	// The most recent entry survives.
	_, ok := c.Get("t", "m999")
	require.True(t, ok)
	// Updating an entry replaces it.
	c.Set("t", "m999", Metadata{Type: model.MetricTypeCounter})
	md, ok := c.Get("t", "m999")
	require.True(t, ok)
	require.Equal(t, model.MetricTypeCounter, md.Type)
}

func TestTypeCacheCopiesStrings(t *testing.T) {
	c := NewTypeCache(10)
	buf := []byte("family")
	c.Set("t", string(buf), Metadata{Type: model.MetricTypeGauge})
	copy(buf, "xxxxxx")
	_, ok := c.Get("t", "family")
	require.True(t, ok)
}

func TestTypeCacheConcurrent(t *testing.T) {
	c := NewTypeCache(64)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				name := fmt.Sprintf("m%d", (i*7+w)%100)
				c.Set("t", name, Metadata{Type: model.MetricTypeGauge})
				c.Lookup("t", name+"_total")
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, c.Len(), 128)
}

func TestTypeCacheNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with -race")
	}
	c := NewTypeCache(100)
	c.Set("t", "http_requests", Metadata{Type: model.MetricTypeCounter})
	require.Zero(t, testing.AllocsPerRun(100, func() { c.Lookup("t", "http_requests_total") }))
	require.Zero(t, testing.AllocsPerRun(100, func() { c.Set("t", "http_requests", Metadata{Type: model.MetricTypeCounter}) }))
}

func TestTypeConversions(t *testing.T) {
	require.Equal(t, model.MetricTypeCounter, TypeFromRW1(prompb.MetricMetadata_COUNTER))
	require.Equal(t, model.MetricTypeStateset, TypeFromRW1(prompb.MetricMetadata_STATESET))
	require.Equal(t, model.MetricType(""), TypeFromRW1(prompb.MetricMetadata_UNKNOWN))
	require.Equal(t, model.MetricTypeHistogram, TypeFromRW2(writev2.Metadata_METRIC_TYPE_HISTOGRAM))
	require.Equal(t, model.MetricTypeInfo, TypeFromRW2(writev2.Metadata_METRIC_TYPE_INFO))
	require.Equal(t, model.MetricType(""), TypeFromRW2(writev2.Metadata_METRIC_TYPE_UNSPECIFIED))
}
