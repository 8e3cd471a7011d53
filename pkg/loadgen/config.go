// Package loadgen is promgov's own Remote Write load generator. It produces a
// deterministic workload (see Generator), encodes it as Remote Write 1.0 or 2.0
// requests, sends them with a configurable rate and concurrency, retries 429/5xx
// responses like a real sender and summarises the outcome in a Report.
//
// The package is used by cmd/loadgen and, in-process, by integration tests.
package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Protocol selects the Remote Write protocol version.
type Protocol string

// Supported protocols.
const (
	// ProtocolV1 is Remote Write 1.0 (prompb.WriteRequest).
	ProtocolV1 Protocol = "1.0"
	// ProtocolV2 is Remote Write 2.0 (io.prometheus.write.v2.Request).
	ProtocolV2 Protocol = "2.0"
)

// Output formats accepted by Config.Output.
const (
	// OutputText renders the final report as human-readable text.
	OutputText = "text"
	// OutputJSON renders the final report as a JSON object.
	OutputJSON = "json"
)

// normalize maps accepted aliases ("1", "v1", "2", "v2") onto the canonical
// protocol constants; it returns "" for unknown values.
func (p Protocol) normalize() Protocol {
	switch strings.ToLower(strings.TrimSpace(string(p))) {
	case "1", "1.0", "v1", "0.1.0":
		return ProtocolV1
	case "2", "2.0", "v2", "2.0.0":
		return ProtocolV2
	default:
		return ""
	}
}

// Config configures a load generation run. The zero value is not valid; start
// from DefaultConfig or register flags with RegisterFlags.
type Config struct {
	// URL is the Remote Write endpoint, e.g. http://127.0.0.1:9090/api/v1/write,
	// or a comma-separated list of endpoints that attempts, retries
	// included, take in turn (round robin), like a client-side load
	// balancer in front of several distributors: a retry after a failure
	// goes to another endpoint than the failed attempt whenever the
	// senders' turns allow it.
	URL string `yaml:"url"`
	// Tenant, when set, is sent as the X-Scope-OrgID header.
	Tenant string `yaml:"tenant"`
	// Protocol is "1.0" or "2.0" (aliases "1", "v1", "2", "v2" are accepted).
	Protocol Protocol `yaml:"protocol"`

	// Metrics is the number of distinct metric names (families).
	Metrics int `yaml:"metrics"`
	// SeriesPerMetric is the number of series per metric name.
	SeriesPerMetric int `yaml:"series_per_metric"`
	// Labels is the number of extra labels per series.
	Labels int `yaml:"labels"`
	// LabelCardinality is the number of distinct values of each extra label.
	LabelCardinality int `yaml:"label_cardinality"`
	// Histograms selects the metrics sent as native histograms: a value in
	// (0,1) is a fraction of Metrics, a value >= 1 is a count of metrics.
	Histograms float64 `yaml:"histograms"`
	// Exemplars attaches an exemplar to every N-th sample (0 disables).
	Exemplars int `yaml:"exemplars"`
	// Metadata sends metric metadata (RW1: once per family per request; RW2: per series).
	Metadata bool `yaml:"metadata"`
	// Interleave spreads the series over the metrics round robin (series i
	// belongs to metric i mod Metrics), so a request's series span many
	// metrics, and gives every series a distinct "series" label value (its
	// global index). It is how ../shared/perf's rwprobe, the issue-12
	// workload, lays out its series. Off, a metric's series are
	// consecutive and "series" is the index within the metric.
	Interleave bool `yaml:"interleave"`

	// Rate is the target samples per second (0 = as fast as possible).
	Rate float64 `yaml:"rate"`
	// Duration stops the run after this long (0 = no time limit).
	Duration time.Duration `yaml:"duration"`
	// Warmup keeps the latency of attempts that start in the run's first
	// Warmup out of LatencyMS (they go to WarmupLatencyMS): a steady-state
	// latency, without the receiver's first sight of every series. Every
	// other counter includes them.
	Warmup time.Duration `yaml:"warmup"`
	// Requests stops the run after this many requests were dispatched (0 = no
	// limit). A round takes ceil(metrics*series_per_metric/series_per_request)
	// requests; other values end the run with a partial round.
	Requests int `yaml:"requests"`
	// Concurrency is the number of parallel senders.
	Concurrency int `yaml:"concurrency"`
	// SeriesPerRequest is the batch size: series (one sample each) per request.
	SeriesPerRequest int `yaml:"series_per_request"`

	// Retry retries 429 and 5xx responses (and transport errors) with backoff.
	Retry bool `yaml:"retry"`
	// MaxRetries bounds the retries of one request (0 = retry until the run stops).
	MaxRetries int `yaml:"max_retries"`
	// MinBackoff is the first retry delay; it doubles up to MaxBackoff.
	MinBackoff time.Duration `yaml:"min_backoff"`
	// MaxBackoff caps the retry delay.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout is the per-attempt HTTP timeout.
	Timeout time.Duration `yaml:"timeout"`

	// ReportInterval logs a progress report this often (0 disables).
	ReportInterval time.Duration `yaml:"report_interval"`
	// Output is the final report format: "text" or "json".
	Output string `yaml:"output"`
	// TLS of an https URL: the CA that signs the server's certificate
	// (empty: the system's) and a client certificate to present.
	TLSCAFile   string `yaml:"tls_ca_file"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// DefaultConfig returns the defaults also used by RegisterFlags.
func DefaultConfig() Config {
	return Config{
		URL:              "http://127.0.0.1:9090/api/v1/write",
		Protocol:         ProtocolV1,
		Metrics:          10,
		SeriesPerMetric:  100,
		Labels:           2,
		LabelCardinality: 10,
		Rate:             0,
		Duration:         10 * time.Second,
		Concurrency:      4,
		SeriesPerRequest: 500,
		Retry:            true,
		MaxRetries:       10,
		MinBackoff:       30 * time.Millisecond,
		MaxBackoff:       5 * time.Second,
		Timeout:          30 * time.Second,
		ReportInterval:   10 * time.Second,
		Output:           OutputText,
	}
}

// RegisterFlags registers every field on fs as prefix+name with the values of
// DefaultConfig as defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.URL, prefix+"url", d.URL, "Remote Write endpoint URL, or a comma-separated list that attempts (retries included) take in turn.")
	fs.StringVar(&c.Tenant, prefix+"tenant", d.Tenant, "Tenant sent as X-Scope-OrgID (empty = header not sent).")
	c.Protocol = d.Protocol
	fs.Func(prefix+"protocol", "Remote Write protocol: 1.0 or 2.0 (default 1.0).", func(s string) error {
		c.Protocol = Protocol(s)
		return nil
	})
	fs.IntVar(&c.Metrics, prefix+"metrics", d.Metrics, "Number of metric names (loadgen_metric_<i>_total).")
	fs.IntVar(&c.SeriesPerMetric, prefix+"series-per-metric", d.SeriesPerMetric, "Series per metric name.")
	fs.IntVar(&c.Labels, prefix+"labels", d.Labels, "Extra labels per series.")
	fs.IntVar(&c.LabelCardinality, prefix+"label-cardinality", d.LabelCardinality, "Distinct values per extra label.")
	fs.Float64Var(&c.Histograms, prefix+"histograms", d.Histograms, "Metrics sent as native histograms: fraction in (0,1) or a count >= 1.")
	fs.IntVar(&c.Exemplars, prefix+"exemplars", d.Exemplars, "Attach an exemplar every N samples (0 = none).")
	fs.BoolVar(&c.Metadata, prefix+"metadata", d.Metadata, "Send metric metadata.")
	fs.BoolVar(&c.Interleave, prefix+"interleave", d.Interleave, "Spread series over the metrics round robin (a request spans many metrics) with a distinct series label value each, as ../shared/perf's rwprobe does.")
	fs.Float64Var(&c.Rate, prefix+"rate", d.Rate, "Target samples per second (0 = as fast as possible).")
	fs.DurationVar(&c.Duration, prefix+"duration", d.Duration, "Run duration (0 = unlimited).")
	fs.DurationVar(&c.Warmup, prefix+"warmup", d.Warmup, "Report the latency of attempts started in the run's first this long apart, as warmup_latency_ms (0 = none).")
	fs.IntVar(&c.Requests, prefix+"requests", d.Requests, "Stop after this many requests (0 = unlimited).")
	fs.IntVar(&c.Concurrency, prefix+"concurrency", d.Concurrency, "Parallel senders.")
	fs.IntVar(&c.SeriesPerRequest, prefix+"series-per-request", d.SeriesPerRequest, "Series (one sample each) per request.")
	fs.BoolVar(&c.Retry, prefix+"retry", d.Retry, "Retry 429/5xx responses and transport errors with backoff.")
	fs.IntVar(&c.MaxRetries, prefix+"max-retries", d.MaxRetries, "Maximum retries per request (0 = until the run stops).")
	fs.DurationVar(&c.MinBackoff, prefix+"min-backoff", d.MinBackoff, "Initial retry backoff.")
	fs.DurationVar(&c.MaxBackoff, prefix+"max-backoff", d.MaxBackoff, "Maximum retry backoff.")
	fs.DurationVar(&c.Timeout, prefix+"timeout", d.Timeout, "Per-attempt HTTP timeout.")
	fs.DurationVar(&c.ReportInterval, prefix+"report-interval", d.ReportInterval, "Progress report interval on stderr (0 = none).")
	fs.StringVar(&c.Output, prefix+"output", d.Output, "Final report format: text or json.")
	fs.StringVar(&c.TLSCAFile, prefix+"tls-ca-file", "", "CA certificate (PEM) of an https URL's server (default: the system's).")
	fs.StringVar(&c.TLSCertFile, prefix+"tls-cert-file", "", "Client certificate (PEM) to present over https.")
	fs.StringVar(&c.TLSKeyFile, prefix+"tls-key-file", "", "Client private key (PEM).")
}

// Validate checks the whole configuration, including the target and rate settings.
func (c *Config) Validate() error {
	for _, raw := range c.URLs() {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url: %q is not an http(s) URL; set it to e.g. http://127.0.0.1:9090/api/v1/write", raw)
		}
	}
	if c.Protocol.normalize() == "" {
		return fmt.Errorf("protocol: unknown value %q; use 1.0 or 2.0", c.Protocol)
	}
	if err := c.validateWorkload(); err != nil {
		return err
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0), "rate: must be a finite number >= 0 (0 = unlimited)"},
		{c.Duration < 0, "duration: must be >= 0 (0 = unlimited)"},
		{c.Warmup < 0, "warmup: must be >= 0 (0 = none)"},
		{c.Duration > 0 && c.Warmup >= c.Duration, "warmup: must be shorter than duration, or no latency is reported"},
		{c.Requests < 0, "requests: must be >= 0 (0 = unlimited)"},
		{c.Concurrency < 1, "concurrency: must be >= 1"},
		{c.SeriesPerRequest < 1, "series_per_request: must be >= 1"},
		{c.MaxRetries < 0, "max_retries: must be >= 0 (0 = until the run stops)"},
		{c.MinBackoff <= 0, "min_backoff: must be > 0, e.g. 30ms"},
		{c.MaxBackoff < c.MinBackoff, "max_backoff: must be >= min_backoff"},
		{c.Timeout <= 0, "timeout: must be > 0, e.g. 30s"},
		{c.ReportInterval < 0, "report_interval: must be >= 0 (0 = no progress reports)"},
		{c.Output != OutputText && c.Output != OutputJSON, "output: must be \"text\" or \"json\""},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

// URLs returns the endpoints of URL, in order.
func (c *Config) URLs() []string {
	parts := strings.Split(c.URL, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// validateWorkload checks only the fields NewGenerator depends on.
func (c *Config) validateWorkload() error {
	switch {
	case c.Metrics < 1:
		return errors.New("metrics: must be >= 1")
	case c.SeriesPerMetric < 1:
		return errors.New("series_per_metric: must be >= 1")
	case c.Labels < 0:
		return errors.New("labels: must be >= 0")
	case c.Labels > 0 && c.LabelCardinality < 1:
		return errors.New("label_cardinality: must be >= 1 when labels > 0")
	case c.Exemplars < 0:
		return errors.New("exemplars: must be >= 0 (0 = no exemplars)")
	case c.Histograms < 0 || math.IsNaN(c.Histograms):
		return errors.New("histograms: must be >= 0")
	case c.Histograms >= 1 && c.Histograms != math.Trunc(c.Histograms):
		return errors.New("histograms: values >= 1 are a count of metrics and must be whole numbers")
	case c.Histograms > float64(c.Metrics):
		return fmt.Errorf("histograms: %g exceeds metrics (%d); lower it or raise metrics", c.Histograms, c.Metrics)
	case int64(c.Metrics)*int64(c.SeriesPerMetric) > math.MaxInt32:
		return errors.New("metrics: metrics * series_per_metric must fit in 2^31; lower either")
	}
	return nil
}

// histogramMetrics returns how many metrics are sent as native histograms.
func (c *Config) histogramMetrics() int {
	switch {
	case c.Histograms <= 0:
		return 0
	case c.Histograms < 1:
		n := int(math.Round(c.Histograms * float64(c.Metrics)))
		return max(n, 1)
	default:
		return int(c.Histograms)
	}
}
