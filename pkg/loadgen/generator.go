package loadgen

import (
	"fmt"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
)

// Label names used by generated series.
const (
	// JobLabel is set to "loadgen" on every series.
	JobLabel = "job"
	// SeriesLabel carries the series' index within its metric, keeping series unique.
	SeriesLabel = "series"
	// TraceIDLabel is the exemplar label carrying a deterministic trace id.
	TraceIDLabel = "trace_id"
)

// Point is one series' data point in one round: a float sample, or a native
// histogram when Histogram is non-nil, optionally with an exemplar.
type Point struct {
	// Index is the series index in [0, Generator.NumSeries()).
	Index int
	// Family is the metric index in [0, Config.Metrics).
	Family int
	// Labels are the series labels (shared, do not modify).
	Labels labels.Labels
	// Timestamp is the round's timestamp in milliseconds.
	Timestamp int64
	// Value is the float sample value (round+1); also the histogram's count and sum.
	Value float64
	// Histogram is set for native-histogram series.
	Histogram *histogram.Histogram
	// Exemplar is set when this sample carries an exemplar.
	Exemplar *exemplar.Exemplar
}

// Generator produces a deterministic workload: series labels depend only on
// the series index and values only on the round. It is safe for concurrent use
// after construction.
type Generator struct {
	series     []labels.Labels
	families   []string
	metadata   []metadata.Metadata
	perMetric  int
	metrics    int
	interleave bool
	histFrom   int // metrics with index >= histFrom are native histograms
	exemplarsN int
}

// NewGenerator precomputes the labels of every series described by cfg's
// workload fields (metrics, series_per_metric, labels, label_cardinality,
// histograms, exemplars).
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.validateWorkload(); err != nil {
		return nil, fmt.Errorf("invalid workload: %w", err)
	}
	g := &Generator{
		series:     make([]labels.Labels, cfg.Metrics*cfg.SeriesPerMetric),
		families:   make([]string, cfg.Metrics),
		metadata:   make([]metadata.Metadata, cfg.Metrics),
		perMetric:  cfg.SeriesPerMetric,
		metrics:    cfg.Metrics,
		interleave: cfg.Interleave,
		histFrom:   cfg.Metrics - cfg.histogramMetrics(),
		exemplarsN: cfg.Exemplars,
	}
	for m := range cfg.Metrics {
		if m >= g.histFrom {
			g.families[m] = "loadgen_metric_" + strconv.Itoa(m) + "_seconds"
			g.metadata[m] = metadata.Metadata{Type: model.MetricTypeHistogram, Unit: "seconds", Help: "promgov loadgen native histogram " + strconv.Itoa(m) + "."}
		} else {
			g.families[m] = "loadgen_metric_" + strconv.Itoa(m) + "_total"
			g.metadata[m] = metadata.Metadata{Type: model.MetricTypeCounter, Help: "promgov loadgen counter " + strconv.Itoa(m) + "."}
		}
	}
	b := labels.NewScratchBuilder(cfg.Labels + 3)
	for i := range g.series {
		m, s := g.family(i), i%cfg.SeriesPerMetric
		id := s
		if g.interleave {
			s, id = i/cfg.Metrics, i
		}
		b.Reset()
		b.Add(model.MetricNameLabel, g.families[m])
		b.Add(JobLabel, "loadgen")
		b.Add(SeriesLabel, strconv.Itoa(id))
		// Extra label k takes digit k of s written in base label_cardinality,
		// so the first cardinality^labels series get distinct combinations.
		rest := s
		for k := range cfg.Labels {
			b.Add("label_"+strconv.Itoa(k), "value_"+strconv.Itoa(rest%cfg.LabelCardinality))
			rest /= cfg.LabelCardinality
		}
		b.Sort()
		g.series[i] = b.Labels()
	}
	return g, nil
}

// NumSeries returns the number of series sent each round.
func (g *Generator) NumSeries() int { return len(g.series) }

// NumFamilies returns the number of metric names.
func (g *Generator) NumFamilies() int { return len(g.families) }

// SeriesLabels returns the labels of series i; it panics if i is out of range.
func (g *Generator) SeriesLabels(i int) labels.Labels { return g.series[i] }

// Family returns the metric name of family m.
func (g *Generator) Family(m int) string { return g.families[m] }

// FamilyMetadata returns the metadata sent for family m.
func (g *Generator) FamilyMetadata(m int) metadata.Metadata { return g.metadata[m] }

// IsHistogram reports whether series i is sent as a native histogram.
func (g *Generator) IsHistogram(i int) bool { return g.family(i) >= g.histFrom }

// family is the metric index of series i.
func (g *Generator) family(i int) int {
	if g.interleave {
		return i % g.metrics
	}
	return i / g.perMetric
}

// Value returns the float value every series carries in round r: a counter
// that increases by one per round, starting at 1.
func Value(r int) float64 { return float64(r + 1) }

// HasExemplar reports whether series i carries an exemplar in round r:
// samples are numbered r*NumSeries()+i and every N-th one (N = Config.Exemplars)
// starting with sample 0 carries one.
func (g *Generator) HasExemplar(r, i int) bool {
	return g.exemplarsN > 0 && (int64(r)*int64(len(g.series))+int64(i))%int64(g.exemplarsN) == 0
}

// Round returns every series' point for round r at timestamp ts (ms).
func (g *Generator) Round(r int, ts int64) []Point {
	out := make([]Point, len(g.series))
	v := Value(r)
	for i := range out {
		p := &out[i]
		p.Index, p.Family, p.Labels, p.Timestamp, p.Value = i, g.family(i), g.series[i], ts, v
		if p.Family >= g.histFrom {
			p.Histogram = RoundHistogram(r)
		}
		if g.HasExemplar(r, i) {
			id := int64(r)*int64(len(g.series)) + int64(i)
			p.Exemplar = &exemplar.Exemplar{
				Labels: labels.FromStrings(TraceIDLabel, fmt.Sprintf("%016x", id)),
				Value:  v, Ts: ts, HasTs: true,
			}
		}
	}
	return out
}

// RoundHistogram returns the native histogram every histogram series carries
// in round r: count and sum equal Value(r), all observations in one bucket
// (schema 0, bucket (0.5,1]).
func RoundHistogram(r int) *histogram.Histogram {
	n := uint64(r + 1)
	return &histogram.Histogram{
		CounterResetHint: histogram.UnknownCounterReset,
		Schema:           0,
		ZeroThreshold:    1e-128,
		Count:            n,
		Sum:              float64(n),
		PositiveSpans:    []histogram.Span{{Offset: 0, Length: 1}},
		PositiveBuckets:  []int64{int64(n)},
	}
}
