package rules

import (
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

const typeCacheShards = 16

// TypeCache remembers metric family metadata per (tenant, family) from
// remote write 1.0 metadata requests, so that later RW 1.0 series (which
// carry no metadata) can be checked by type-dependent rules. It is bounded:
// each shard keeps two generations and drops the older one when the newer
// fills up, so recently used families survive. Safe for concurrent use;
// lookups do not allocate.
type TypeCache struct {
	perGen int
	shards [typeCacheShards]typeCacheShard
}

type typeKey struct{ tenant, family string }

type typeCacheShard struct {
	mu        sync.RWMutex
	cur, prev map[typeKey]Metadata
}

// NewTypeCache returns a cache holding about size entries (at most twice
// that across both generations). size <= 0 means DefaultTypeCacheSize.
func NewTypeCache(size int) *TypeCache {
	if size <= 0 {
		size = DefaultTypeCacheSize
	}
	per := size / typeCacheShards
	if per < 1 {
		per = 1
	}
	c := &TypeCache{perGen: per}
	for i := range c.shards {
		c.shards[i].cur = make(map[typeKey]Metadata)
	}
	return c
}

func (c *TypeCache) shard(tenant, family string) *typeCacheShard {
	h := xxhash.Sum64String(family) ^ (xxhash.Sum64String(tenant) * 0x9E3779B97F4A7C15)
	return &c.shards[h%typeCacheShards]
}

// Set remembers md for (tenant, family). The strings are copied, so they may
// alias a request buffer.
func (c *TypeCache) Set(tenant, family string, md Metadata) {
	s := c.shard(tenant, family)
	k := typeKey{tenant, family}
	s.mu.RLock()
	old, ok := s.cur[k]
	s.mu.RUnlock()
	if ok && old == md {
		return
	}
	k = typeKey{strings.Clone(tenant), strings.Clone(family)}
	md = Metadata{Type: model.MetricType(strings.Clone(string(md.Type))), Unit: strings.Clone(md.Unit), Help: strings.Clone(md.Help)}
	s.mu.Lock()
	s.put(k, md, c.perGen)
	s.mu.Unlock()
}

// put inserts under the write lock, rotating generations when full.
func (s *typeCacheShard) put(k typeKey, md Metadata, perGen int) {
	if _, ok := s.cur[k]; !ok && len(s.cur) >= perGen {
		s.prev = s.cur
		s.cur = make(map[typeKey]Metadata, perGen)
	}
	s.cur[k] = md
}

// Get returns the metadata of (tenant, family).
func (c *TypeCache) Get(tenant, family string) (Metadata, bool) {
	s := c.shard(tenant, family)
	k := typeKey{tenant, family}
	s.mu.RLock()
	md, ok := s.cur[k]
	if ok {
		s.mu.RUnlock()
		return md, true
	}
	md, ok = s.prev[k]
	s.mu.RUnlock()
	if !ok {
		return Metadata{}, false
	}
	// Promote so that families in use survive the next rotation.
	s.mu.Lock()
	if _, again := s.cur[k]; !again {
		if pm, still := s.prev[k]; still {
			s.put(k, pm, c.perGen)
		}
	}
	s.mu.Unlock()
	return md, true
}

// Lookup returns the metadata for a series named metricName: the family of
// the same name, or else the family named after stripping one of the
// suffixes _total, _bucket, _sum, _count, _created, _info, in that order.
func (c *TypeCache) Lookup(tenant, metricName string) (Metadata, bool) {
	if md, ok := c.Get(tenant, metricName); ok {
		return md, true
	}
	for _, suf := range lookupSuffixes {
		if base, ok := strings.CutSuffix(metricName, suf); ok && base != "" {
			if md, ok := c.Get(tenant, base); ok {
				return md, true
			}
		}
	}
	return Metadata{}, false
}

var lookupSuffixes = []string{"_total", "_bucket", "_sum", "_count", "_created", "_info"}

// Len returns the number of entries across both generations.
func (c *TypeCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.cur) + len(s.prev)
		s.mu.RUnlock()
	}
	return n
}

// TypeFromRW1 converts a remote write 1.0 metadata type.
func TypeFromRW1(t prompb.MetricMetadata_MetricType) model.MetricType {
	switch t {
	case prompb.MetricMetadata_COUNTER:
		return model.MetricTypeCounter
	case prompb.MetricMetadata_GAUGE:
		return model.MetricTypeGauge
	case prompb.MetricMetadata_HISTOGRAM:
		return model.MetricTypeHistogram
	case prompb.MetricMetadata_GAUGEHISTOGRAM:
		return model.MetricTypeGaugeHistogram
	case prompb.MetricMetadata_SUMMARY:
		return model.MetricTypeSummary
	case prompb.MetricMetadata_INFO:
		return model.MetricTypeInfo
	case prompb.MetricMetadata_STATESET:
		return model.MetricTypeStateset
	default:
		return ""
	}
}

// TypeFromRW2 converts a remote write 2.0 per-series metadata type.
func TypeFromRW2(t writev2.Metadata_MetricType) model.MetricType {
	switch t {
	case writev2.Metadata_METRIC_TYPE_COUNTER:
		return model.MetricTypeCounter
	case writev2.Metadata_METRIC_TYPE_GAUGE:
		return model.MetricTypeGauge
	case writev2.Metadata_METRIC_TYPE_HISTOGRAM:
		return model.MetricTypeHistogram
	case writev2.Metadata_METRIC_TYPE_GAUGEHISTOGRAM:
		return model.MetricTypeGaugeHistogram
	case writev2.Metadata_METRIC_TYPE_SUMMARY:
		return model.MetricTypeSummary
	case writev2.Metadata_METRIC_TYPE_INFO:
		return model.MetricTypeInfo
	case writev2.Metadata_METRIC_TYPE_STATESET:
		return model.MetricTypeStateset
	default:
		return ""
	}
}
