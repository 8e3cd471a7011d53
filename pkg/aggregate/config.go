package aggregate

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// Config is the package's configuration: the top-level `aggregations:` list
// of the governance configuration (next to `rules:`, so that it versions
// with it) and where the ingester snapshots aggregation state.
type Config struct {
	// Rules is the `aggregations:` list.
	Rules []RuleConfig `yaml:"aggregations,omitempty" json:"aggregations,omitempty"`
	// SnapshotPath is the file state is snapshotted to at every interval
	// close and at shutdown, and restored from at start. Empty: next to the
	// WAL (aggregation.snapshot).
	SnapshotPath string `yaml:"aggregations_snapshot_path,omitempty" json:"aggregations_snapshot_path,omitempty"`
	// MaxGroups bounds the output series (groups) one ingester keeps state
	// for; beyond it new groups are not aggregated (their inputs pass
	// through, counted as reason="max_groups").
	MaxGroups int `yaml:"aggregations_max_groups,omitempty" json:"aggregations_max_groups,omitempty"`
	// OverflowInterval is the aggregation interval of __overflow__ series
	// (cardinality limits with on_limit: overflow).
	OverflowInterval model.Duration `yaml:"aggregations_overflow_interval,omitempty" json:"aggregations_overflow_interval,omitempty"`
	// OverflowMaxDelay is the max_delay of __overflow__ series: how long
	// after an overflow interval's end its samples still count. 0: the
	// rules' default, a fifth of the interval between 1s and 30s.
	OverflowMaxDelay model.Duration `yaml:"aggregations_overflow_max_delay,omitempty" json:"aggregations_overflow_max_delay,omitempty"`
	// Overflow enables the __overflow__ aggregation; the ingester sets it
	// when a cardinality limit has on_limit: overflow.
	Overflow bool `yaml:"-" json:"-"`
}

// DefaultOverflowInterval is the default of aggregations_overflow_interval.
const DefaultOverflowInterval = 30 * time.Second

// OverflowRuleName names the built-in overflow aggregation in metrics and
// snapshots.
const OverflowRuleName = "__overflow__"

// OverflowValue replaces the value of an overflowing label.
const OverflowValue = "__overflow__"

// DefaultMaxGroups is the default of aggregations_max_groups.
const DefaultMaxGroups = 1_000_000

// Mode says whether a rule changes what is written (enforce) or only counts
// what it would have done (shadow).
type Mode string

// Rule modes.
const (
	ModeEnforce Mode = "enforce"
	ModeShadow  Mode = "shadow"
)

// Type is a metric type as aggregation rules name it.
type Type string

// The metric types an aggregation rule can be declared for.
const (
	TypeCounter   Type = "counter"
	TypeGauge     Type = "gauge"
	TypeHistogram Type = "histogram"
	TypeSummary   Type = "summary"
)

// Outputs.
const (
	// OutputSum is the summed counter (counters, histograms, summaries) or
	// the sum of the last values (gauges).
	OutputSum   = "sum"
	OutputMin   = "min"
	OutputMax   = "max"
	OutputAvg   = "avg"
	OutputCount = "count"
	OutputLast  = "last"
)

// gaugeOutputs are the outputs of gauges; every other type has only sum.
var gaugeOutputs = []string{OutputSum, OutputMin, OutputMax, OutputAvg, OutputCount, OutputLast}

// RuleConfig is one entry of `aggregations:`.
type RuleConfig struct {
	// Name identifies the rule in metrics, the API and the snapshot.
	Name string `yaml:"name" json:"name"`
	// Mode is enforce (default) or shadow: a shadow rule aggregates and
	// counts, but writes its inputs unchanged and no outputs.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Tenants the rule applies to; empty means every tenant.
	Tenants []string `yaml:"tenants,omitempty" json:"tenants,omitempty"`
	// Match is a series selector naming one metric (or, for histograms and
	// summaries, one family), e.g. `http_requests_total{job="api"}`.
	Match string `yaml:"match" json:"match"`
	// Type, when set, declares the metric type: series whose metadata says
	// otherwise pass through (counted), and series without metadata are
	// taken to be of this type. Unset: the type comes from metadata only.
	Type Type `yaml:"type,omitempty" json:"type,omitempty"`
	// By lists the labels to keep; Without the labels to remove. Exactly
	// one of them is set. `le` of histogram buckets is always kept.
	By      []string `yaml:"by,omitempty" json:"by,omitempty"`
	Without []string `yaml:"without,omitempty" json:"without,omitempty"`
	// Interval is the aggregation interval: outputs carry one sample per
	// group and interval.
	Interval model.Duration `yaml:"interval" json:"interval"`
	// MaxDelay is how long after an interval's end its samples are still
	// taken; later samples are dropped and counted (reason="late").
	// Default: a fifth of the interval, between 1s and 30s.
	MaxDelay model.Duration `yaml:"max_delay,omitempty" json:"max_delay,omitempty"`
	// Outputs: sum for counters, histograms and summaries; any of sum, min,
	// max, avg, count, last for gauges. Default: [sum].
	Outputs []string `yaml:"outputs,omitempty" json:"outputs,omitempty"`
	// KeepInput also writes the input series unchanged.
	KeepInput bool `yaml:"keep_input,omitempty" json:"keep_input,omitempty"`
	// OutputName replaces the generated output metric name (see
	// OutputNames); with several outputs each gets ":<output>" appended.
	OutputName string `yaml:"output_name,omitempty" json:"output_name,omitempty"`
	// MarkerLabel, when set, is added to every output with the rule's name
	// as value (e.g. __promgov_aggregated__). Unset: outputs carry no
	// marker.
	MarkerLabel string `yaml:"marker_label,omitempty" json:"marker_label,omitempty"`
}

// defaultMaxDelay is max_delay when unset: a fifth of the interval, between
// 1s and 30s.
func defaultMaxDelay(interval time.Duration) time.Duration {
	return min(max(interval/5, time.Second), 30*time.Second)
}

// RegisterFlags registers the config's flags, with prefix prepended; the
// rules themselves are YAML-only.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.SnapshotPath, prefix+"snapshot-path", "", "File aggregation state is snapshotted to and restored from (default: aggregation.snapshot in --wal.dir).")
	c.OverflowInterval = model.Duration(DefaultOverflowInterval)
	fs.Func(prefix+"overflow-interval", "Aggregation interval of the __overflow__ series of cardinality limits with on_limit: overflow (default 30s).", durationFlag(&c.OverflowInterval))
	fs.Func(prefix+"overflow-max-delay", "How long after an __overflow__ interval's end its samples still count; later ones are dropped, counted (default: a fifth of the overflow interval, between 1s and 30s).", durationFlag(&c.OverflowMaxDelay))
	fs.IntVar(&c.MaxGroups, prefix+"max-groups", DefaultMaxGroups, "Maximum aggregation output series (groups) one ingester keeps state for; inputs of further groups pass through, counted.")
}

// durationFlag parses a flag's value (a Prometheus duration) into dst.
func durationFlag(dst *model.Duration) func(string) error {
	return func(s string) error {
		d, err := model.ParseDuration(s)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
}

// Validate checks every rule; errors name the rule and the field.
func (c *Config) Validate() error {
	if c.MaxGroups < 0 {
		return fmt.Errorf("aggregations_max_groups %d: must be >= 0 (0: the default %d)", c.MaxGroups, DefaultMaxGroups)
	}
	if iv := time.Duration(c.OverflowInterval); iv != 0 && (iv < time.Second || iv%time.Second != 0 || iv > time.Hour) {
		return fmt.Errorf("aggregations_overflow_interval %s: use a whole number of seconds between 1s and 1h", iv)
	}
	if err := c.validOverflowMaxDelay(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := r.Validate(); err != nil {
			if r.Name != "" {
				return fmt.Errorf("aggregations[%d] (%s): %w", i, r.Name, err)
			}
			return fmt.Errorf("aggregations[%d]: %w", i, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("aggregations[%d]: name %q is used by another rule; rule names must be unique", i, r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}

// validOverflowMaxDelay checks aggregations_overflow_max_delay against the
// overflow interval: like a rule's max_delay, at most 10 intervals.
func (c *Config) validOverflowMaxDelay() error {
	iv := time.Duration(c.OverflowInterval)
	if iv == 0 {
		iv = DefaultOverflowInterval
	}
	if md := time.Duration(c.OverflowMaxDelay); md < 0 || md > 10*iv {
		return fmt.Errorf("aggregations_overflow_max_delay %s: must be between 0 (the default, a fifth of the interval) and 10 overflow intervals (%s)", md, 10*iv)
	}
	return nil
}

// Validate checks one rule; errors name the field and the fix.
func (r *RuleConfig) Validate() error {
	if r.Name == "" {
		return errors.New("name: required")
	}
	if r.Name == OverflowRuleName {
		return fmt.Errorf("name %q: reserved for the overflow aggregation", r.Name)
	}
	switch r.Mode {
	case "", ModeEnforce, ModeShadow:
	default:
		return fmt.Errorf("mode %q: use enforce or shadow", r.Mode)
	}
	if _, _, err := parseMatch(r.Match); err != nil {
		return err
	}
	switch r.Type {
	case "", TypeCounter, TypeGauge, TypeHistogram, TypeSummary:
	default:
		return fmt.Errorf("type %q: use counter, gauge, histogram or summary (or leave it unset to take the type from metadata)", r.Type)
	}
	if len(r.By) > 0 && len(r.Without) > 0 {
		return errors.New("by and without: set one of them, not both")
	}
	if len(r.By) == 0 && len(r.Without) == 0 {
		return errors.New("by or without: one of them is required (the labels to keep or to remove)")
	}
	for _, l := range append(slices.Clone(r.By), r.Without...) {
		if l == "" || l == model.MetricNameLabel || !model.UTF8Validation.IsValidLabelName(l) {
			return fmt.Errorf("by/without: %q is not a label that can be kept or removed", l)
		}
	}
	if slices.Contains(r.Without, "le") {
		return errors.New("without: le cannot be removed (histogram buckets keep it); remove the other labels")
	}
	iv := time.Duration(r.Interval)
	if iv < time.Second || iv%time.Second != 0 || iv > 24*time.Hour {
		return fmt.Errorf("interval %s: use a whole number of seconds between 1s and 24h, e.g. 30s or 1m", iv)
	}
	if md := time.Duration(r.MaxDelay); md < 0 || md > iv*10 {
		return fmt.Errorf("max_delay %s: must be between 0 and 10 intervals (%s)", md, 10*iv)
	}
	seen := map[string]bool{}
	for _, o := range r.Outputs {
		if !slices.Contains(gaugeOutputs, o) {
			return fmt.Errorf("outputs: unknown output %q; use %s", o, strings.Join(gaugeOutputs, ", "))
		}
		if seen[o] {
			return fmt.Errorf("outputs: %q is listed twice", o)
		}
		seen[o] = true
		if r.Type != "" && r.Type != TypeGauge && o != OutputSum {
			return fmt.Errorf("outputs: %q is a gauge output; a %s can only be aggregated to sum", o, r.Type)
		}
	}
	if r.OutputName != "" && !model.UTF8Validation.IsValidMetricName(r.OutputName) {
		return fmt.Errorf("output_name %q: not a valid metric name", r.OutputName)
	}
	if r.MarkerLabel != "" && (!model.UTF8Validation.IsValidLabelName(r.MarkerLabel) || r.MarkerLabel == model.MetricNameLabel) {
		return fmt.Errorf("marker_label %q: not a valid label name", r.MarkerLabel)
	}
	if r.MarkerLabel != "" && (slices.Contains(r.By, r.MarkerLabel)) {
		return fmt.Errorf("marker_label %q: also listed in by; choose a label the inputs do not keep", r.MarkerLabel)
	}
	return nil
}

// outputs returns the rule's outputs, [sum] by default.
func (r *RuleConfig) outputs() []string {
	if len(r.Outputs) == 0 {
		return []string{OutputSum}
	}
	return r.Outputs
}

// parseMatch parses match: a selector with a metric name equality matcher.
func parseMatch(s string) (name string, ms []*labels.Matcher, err error) {
	if s == "" {
		return "", nil, errors.New("match: required, a series selector naming one metric such as http_requests_total{job=\"api\"}")
	}
	ms, err = parser.NewParser(parser.Options{}).ParseMetricSelector(s)
	if err != nil {
		return "", nil, fmt.Errorf("match %q: %w", s, err)
	}
	rest := ms[:0:0]
	for _, m := range ms {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			if name != "" && name != m.Value {
				return "", nil, fmt.Errorf("match %q: two different metric names", s)
			}
			name = m.Value
			continue
		}
		rest = append(rest, m)
	}
	if name == "" {
		return "", nil, fmt.Errorf("match %q: name the metric (an equality on __name__): a metric is aggregated exactly only on the one ingester that owns it", s)
	}
	return name, rest, nil
}

// OutputNames returns the metric name of each output of a rule for an
// input of the given family name (histogram and summary parts get their
// _bucket, _sum or _count suffix after it):
//
//   - output_name set, one output: output_name;
//   - output_name set, several: output_name + ":" + output;
//   - by (a, b): "a_b:" + family + ":" + output;
//   - without (pod, instance): family + ":" + output + "_without_pod_instance".
func (r *RuleConfig) OutputNames(family string) []string {
	outs := r.outputs()
	names := make([]string, len(outs))
	for i, o := range outs {
		switch {
		case r.OutputName != "" && len(outs) == 1:
			names[i] = r.OutputName
		case r.OutputName != "":
			names[i] = r.OutputName + ":" + o
		case len(r.By) > 0:
			names[i] = strings.Join(r.By, "_") + ":" + family + ":" + o
		default:
			names[i] = family + ":" + o + "_without_" + strings.Join(r.Without, "_")
		}
	}
	return names
}

// Load parses the `aggregations:` section from YAML (unknown fields are
// errors) and validates it.
func Load(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse aggregations: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
