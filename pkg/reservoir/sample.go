package reservoir

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

// Series is one sampled series.
type Series struct {
	Labels labels.Labels
	// Type is the Remote Write 2.0 metadata type the series carried
	// (unspecified when none).
	Type writev2.Metadata_MetricType
}

// MetricSample is the sample of one (tenant, metric).
type MetricSample struct {
	Tenant, Metric string
	// Series are the sampled series, fewer than SeriesPerMetric when the
	// metric has fewer live series.
	Series []Series
	// Full reports whether the sample holds SeriesPerMetric series: the
	// metric may have more series than sampled.
	Full bool
}

// Samples copies the samples of every metric of tenant (empty: every
// tenant), without series older than MaxAge, ordered by tenant and metric.
func (r *Reservoir) Samples(tenant string, now time.Time) []MetricSample {
	if r == nil {
		return nil
	}
	cut := now.Add(-r.cfg.MaxAge).Unix()
	type ref struct {
		k key
		m *metric
	}
	r.mu.RLock()
	refs := make([]ref, 0, len(r.metrics))
	for k, m := range r.metrics {
		if tenant == "" || k.tenant == tenant {
			refs = append(refs, ref{k, m})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(refs, func(a, b ref) int {
		if c := strings.Compare(a.k.tenant, b.k.tenant); c != 0 {
			return c
		}
		return strings.Compare(a.k.metric, b.k.metric)
	})
	out := make([]MetricSample, 0, len(refs))
	var sb labels.ScratchBuilder
	for _, rf := range refs {
		s := MetricSample{Tenant: rf.k.tenant, Metric: rf.k.metric}
		rf.m.mu.Lock()
		s.Full = len(rf.m.hashes) >= r.cfg.SeriesPerMetric
		for i, b := range rf.m.series {
			if rf.m.seen[i] < cut {
				continue
			}
			s.Series = append(s.Series, Series{Labels: record.Labels(b, &sb), Type: metaType(b)})
		}
		rf.m.mu.Unlock()
		if len(s.Series) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// metaType reads the type of a kept series' metadata field.
func metaType(b []byte) writev2.Metadata_MetricType {
	var t writev2.Metadata_MetricType
	forFields(b, func(raw []byte) {
		num, _, n := protowire.ConsumeTag(raw)
		if num != record.MetadataField {
			return
		}
		if v, m := protowire.ConsumeBytes(raw[n:]); m >= 0 {
			t = record.MetaType(v)
		}
	})
	return t
}

// Stats is the reservoir's size.
type Stats struct {
	Metrics int `json:"metrics"`
	Series  int `json:"series"`
	// Bytes is the memory held: the kept labels plus the fixed cost of
	// each entry and metric (see docs/governance.md for measured values).
	Bytes int64 `json:"bytes"`
}

// Fixed costs of the accounting in Stats.Bytes, on 64-bit platforms: per
// entry a hash, a time and a slice header; per metric the struct, its map
// entry and key, and the slices' headers.
const (
	entryOverhead  = 8 + 8 + 24
	metricOverhead = 160
)

// Stats counts what the reservoir holds.
func (r *Reservoir) Stats() Stats {
	if r == nil {
		return Stats{}
	}
	var s Stats
	r.mu.RLock()
	defer r.mu.RUnlock()
	s.Metrics = len(r.metrics)
	for k, m := range r.metrics {
		m.mu.Lock()
		s.Series += len(m.hashes)
		s.Bytes += int64(metricOverhead + len(k.tenant) + len(k.metric) + cap(m.hashes)*entryOverhead)
		for _, b := range m.series {
			s.Bytes += int64(cap(b))
		}
		m.mu.Unlock()
	}
	return s
}
