package loadgen

import (
	"flag"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestGeneratorSeriesLabels(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Metrics, cfg.SeriesPerMetric, cfg.Labels, cfg.LabelCardinality = 3, 10, 2, 3
	g, err := NewGenerator(cfg)
	require.NoError(t, err)
	require.Equal(t, 30, g.NumSeries())

	tests := map[string]struct {
		index int
		want  labels.Labels
	}{
		"first series":          {0, labels.FromStrings("__name__", "loadgen_metric_0_total", "job", "loadgen", "series", "0", "label_0", "value_0", "label_1", "value_0")},
		"digits of 5 in base 3": {5, labels.FromStrings("__name__", "loadgen_metric_0_total", "job", "loadgen", "series", "5", "label_0", "value_2", "label_1", "value_1")},
		"second metric":         {13, labels.FromStrings("__name__", "loadgen_metric_1_total", "job", "loadgen", "series", "3", "label_0", "value_0", "label_1", "value_1")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, g.SeriesLabels(tc.index))
		})
	}

	// Deterministic and unique.
	g2, err := NewGenerator(cfg)
	require.NoError(t, err)
	seen := map[string]bool{}
	distinct := map[string]map[string]bool{"label_0": {}, "label_1": {}}
	for i := range g.NumSeries() {
		require.Equal(t, g.SeriesLabels(i), g2.SeriesLabels(i))
		s := g.SeriesLabels(i).String()
		require.False(t, seen[s], "duplicate series %s", s)
		seen[s] = true
		for k := range distinct {
			distinct[k][g.SeriesLabels(i).Get(k)] = true
		}
	}
	for k, vals := range distinct {
		require.Len(t, vals, cfg.LabelCardinality, k)
	}
}

// TestGeneratorInterleave checks the rwprobe layout: series i belongs to
// metric i mod metrics, every series label value is distinct, and the
// series of one request (consecutive indexes) span as many metrics as it
// has series, up to the number of metrics.
func TestGeneratorInterleave(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Metrics, cfg.SeriesPerMetric, cfg.Labels, cfg.LabelCardinality, cfg.Histograms = 4, 3, 1, 3, 1
	cfg.Interleave = true
	g, err := NewGenerator(cfg)
	require.NoError(t, err)
	require.Equal(t, 12, g.NumSeries())
	require.Equal(t, labels.FromStrings("__name__", "loadgen_metric_1_total", "job", "loadgen", "series", "5", "label_0", "value_1"), g.SeriesLabels(5))
	require.Equal(t, labels.FromStrings("__name__", "loadgen_metric_3_seconds", "job", "loadgen", "series", "11", "label_0", "value_2"), g.SeriesLabels(11))
	values, perMetric := map[string]bool{}, map[int]int{}
	for i, p := range g.Round(0, 1000) {
		require.Equal(t, i%4, p.Family)
		require.Equal(t, i%4 == 3, g.IsHistogram(i), "the last metric is the histogram")
		require.Equal(t, g.IsHistogram(i), p.Histogram != nil)
		values[p.Labels.Get(SeriesLabel)] = true
		perMetric[p.Family]++
	}
	require.Len(t, values, 12, "every series label value distinct")
	require.Equal(t, map[int]int{0: 3, 1: 3, 2: 3, 3: 3}, perMetric)
}

func TestGeneratorRound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Metrics, cfg.SeriesPerMetric, cfg.Histograms, cfg.Exemplars = 4, 5, 0.5, 7
	g, err := NewGenerator(cfg)
	require.NoError(t, err)
	var histSeries, exemplars int
	for r := range 7 {
		pts := g.Round(r, int64(1000+r))
		require.Len(t, pts, 20)
		for i, p := range pts {
			require.Equal(t, i, p.Index)
			require.Equal(t, int64(1000+r), p.Timestamp)
			require.Equal(t, float64(r+1), p.Value)
			require.Equal(t, g.SeriesLabels(i), p.Labels)
			require.Equal(t, i/5, p.Family)
			require.Equal(t, g.IsHistogram(i), p.Histogram != nil)
			if p.Histogram != nil {
				histSeries++
				require.NoError(t, p.Histogram.Validate())
				require.Equal(t, uint64(r+1), p.Histogram.Count)
				require.Contains(t, p.Labels.Get(model.MetricNameLabel), "_seconds")
			}
			if p.Exemplar != nil {
				exemplars++
				require.True(t, g.HasExemplar(r, i))
			}
		}
	}
	require.Equal(t, 7*10, histSeries, "half of the 4 metrics (the last two) are histograms")
	require.Equal(t, 20, exemplars, "7 rounds * 20 series / every 7th sample")
	require.False(t, g.IsHistogram(9))
	require.True(t, g.IsHistogram(10))
}

func TestHistogramSelection(t *testing.T) {
	tests := map[string]struct {
		histograms float64
		want       int
	}{
		"none":              {0, 0},
		"fraction":          {0.25, 2},
		"tiny fraction":     {0.01, 1},
		"count":             {3, 3},
		"all as a count":    {8, 8},
		"fraction rounding": {0.5, 4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Metrics, cfg.Histograms = 8, tc.histograms
			require.Equal(t, tc.want, cfg.histogramMetrics())
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate  func(*Config)
		wantErr string
	}{
		"defaults":              {mutate: func(*Config) {}},
		"v2 alias":              {mutate: func(c *Config) { c.Protocol = "v2" }},
		"bad url":               {mutate: func(c *Config) { c.URL = "127.0.0.1:9090" }, wantErr: "url:"},
		"url list":              {mutate: func(c *Config) { c.URL = "http://a:1/w, http://b:2/w" }},
		"bad url in list":       {mutate: func(c *Config) { c.URL = "http://a:1/w,b:2" }, wantErr: `url: "b:2"`},
		"bad protocol":          {mutate: func(c *Config) { c.Protocol = "3" }, wantErr: "protocol:"},
		"no metrics":            {mutate: func(c *Config) { c.Metrics = 0 }, wantErr: "metrics:"},
		"no series":             {mutate: func(c *Config) { c.SeriesPerMetric = 0 }, wantErr: "series_per_metric:"},
		"zero cardinality":      {mutate: func(c *Config) { c.LabelCardinality = 0 }, wantErr: "label_cardinality:"},
		"fractional count":      {mutate: func(c *Config) { c.Histograms = 1.5 }, wantErr: "histograms:"},
		"too many histograms":   {mutate: func(c *Config) { c.Histograms = 11 }, wantErr: "histograms:"},
		"negative exemplars":    {mutate: func(c *Config) { c.Exemplars = -1 }, wantErr: "exemplars:"},
		"negative rate":         {mutate: func(c *Config) { c.Rate = -1 }, wantErr: "rate:"},
		"negative requests":     {mutate: func(c *Config) { c.Requests = -1 }, wantErr: "requests:"},
		"zero concurrency":      {mutate: func(c *Config) { c.Concurrency = 0 }, wantErr: "concurrency:"},
		"zero batch":            {mutate: func(c *Config) { c.SeriesPerRequest = 0 }, wantErr: "series_per_request:"},
		"backoff order":         {mutate: func(c *Config) { c.MaxBackoff = time.Millisecond }, wantErr: "max_backoff:"},
		"zero timeout":          {mutate: func(c *Config) { c.Timeout = 0 }, wantErr: "timeout:"},
		"unknown output":        {mutate: func(c *Config) { c.Output = "yaml" }, wantErr: "output:"},
		"negative report every": {mutate: func(c *Config) { c.ReportInterval = -time.Second }, wantErr: "report_interval:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestConfigRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags("lg.", fs)
	require.Equal(t, DefaultConfig(), cfg, "flags carry the defaults")
	require.NoError(t, fs.Parse([]string{
		"-lg.url=http://x:1/w", "-lg.protocol=2.0", "-lg.metrics=3", "-lg.histograms=0.5",
		"-lg.retry=false", "-lg.duration=1m", "-lg.output=json", "-lg.tenant=t1",
	}))
	require.NoError(t, cfg.Validate())
	require.Equal(t, "http://x:1/w", cfg.URL)
	require.Equal(t, ProtocolV2, cfg.Protocol)
	require.Equal(t, 3, cfg.Metrics)
	require.Equal(t, 0.5, cfg.Histograms)
	require.False(t, cfg.Retry)
	require.Equal(t, time.Minute, cfg.Duration)
	require.Equal(t, OutputJSON, cfg.Output)
	require.Equal(t, "t1", cfg.Tenant)
}

// pacerStep reserves n samples at t0+at and expects to wait wait.
type pacerStep struct {
	at   time.Duration
	n    int
	wait time.Duration
}

func TestPacer(t *testing.T) {
	t0 := time.Unix(100, 0)
	tests := map[string]struct {
		rate  float64
		steps []pacerStep
	}{
		"unlimited":                  {rate: 0, steps: []pacerStep{{0, 100, 0}, {0, 100, 0}}},
		"spaced by n/rate":           {rate: 100, steps: []pacerStep{{0, 10, 0}, {0, 10, 100 * time.Millisecond}, {50 * time.Millisecond, 20, 150 * time.Millisecond}, {time.Second, 1, 0}}},
		"long idle forgets the debt": {rate: 10, steps: []pacerStep{{0, 10, 0}, {5 * time.Second, 10, 0}, {5 * time.Second, 10, time.Second}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := pacer{rate: tc.rate}
			for i, s := range tc.steps {
				require.Equal(t, s.wait, p.reserve(t0.Add(s.at), s.n), "step %d", i)
			}
		})
	}
}
