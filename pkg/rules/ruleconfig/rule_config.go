package ruleconfig

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promgov/promgov/pkg/plugin"
	"github.com/promgov/promgov/pkg/stage"
)

// Mode says whether a rule changes series (enforce) or only counts what it
// would have done (shadow).
type Mode string

// Rule modes.
const (
	ModeEnforce Mode = "enforce" // the rule changes series (default)
	ModeShadow  Mode = "shadow"  // the rule only counts what it would do
)

// Action is what a naming, labels or limits rule does with a violating
// series (stage.Action: the actions every stage kind shares).
type Action = stage.Action

// Rule actions. Relabel rules have no action of their own: their outcome is
// whatever the relabel configs do (ActionDrop or ActionRewrite in metrics).
const (
	// ActionDrop drops the series.
	ActionDrop = stage.ActionDrop
	// ActionRewrite changes the series so that it complies.
	ActionRewrite = stage.ActionRewrite
	// ActionTag adds the tag label (value: rule name) and forwards the series.
	ActionTag = stage.ActionTag
	// ActionWarn only counts the violation.
	ActionWarn = stage.ActionWarn
)

// Rule kinds, as shown in traces and GET /promgov/api/v1/rules.
const (
	KindRelabel = "relabel" // relabel_configs
	KindNaming  = "naming"  // naming
	KindLabels  = "labels"  // labels
	KindLimits  = "limits"  // limits
	KindPlugin  = "plugin"  // plugin: a WebAssembly module (docs/plugins.md)
	// KindDeprecated is deprecated: metrics from deprecated libraries (the
	// worked example of docs/stages.md).
	KindDeprecated = "deprecated"
	// KindUnused is unused: metrics that no dashboard, alert or query
	// uses, as the usage analysis selects them (usage.drop_unused).
	KindUnused = "unused"
)

// RuleConfig is one entry of the `rules:` list. Exactly one of
// RelabelConfigs, Naming, Labels, Limits and Plugin must be set.
type RuleConfig struct {
	// Name identifies the rule in results, traces and metrics.
	Name string `yaml:"name" json:"name"`
	// Mode is enforce (default) or shadow.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Scope restricts the rule to some tenants and series.
	Scope ScopeConfig `yaml:"scope,omitempty" json:"scope,omitempty"`
	// Action is required for naming, labels and limits rules and must be
	// empty for relabel rules.
	Action Action `yaml:"action,omitempty" json:"action,omitempty"`
	// TagLabel overrides rules_tag_label for the tag action.
	TagLabel string `yaml:"tag_label,omitempty" json:"tag_label,omitempty"`

	// RelabelConfigs are Prometheus relabel configs, applied in order.
	RelabelConfigs []*relabel.Config `yaml:"relabel_configs,omitempty" json:"relabel_configs,omitempty"`
	// Naming holds metric name standards.
	Naming *NamingConfig `yaml:"naming,omitempty" json:"naming,omitempty"`
	// Labels holds label name and value standards.
	Labels *LabelsConfig `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Limits holds size limits.
	Limits *LimitsConfig `yaml:"limits,omitempty" json:"limits,omitempty"`
	// Plugin runs a WebAssembly governance plugin; its verdict per series
	// (keep, drop, rewrite or tag) is the rule's action.
	Plugin *plugin.Config `yaml:"plugin,omitempty" json:"plugin,omitempty"`
	// Deprecated names metrics of deprecated libraries by prefix.
	Deprecated *DeprecatedConfig `yaml:"deprecated,omitempty" json:"deprecated,omitempty"`
	// Unused selects the metrics the usage analysis finds unused (its
	// selection follows usage.drop_unused's grace period, allow and deny
	// lists); the rule's action (drop, tag or warn) applies to them.
	Unused *UnusedConfig `yaml:"unused,omitempty" json:"unused,omitempty"`
}

// UnusedConfig is the configuration of a rule of kind unused: none yet
// (`unused: {}`); which metrics are unused is the usage analysis'.
type UnusedConfig struct{}

// DeprecatedConfig names deprecated metrics: those whose name starts with
// one of Prefixes (e.g. the metrics of a client library being retired).
// The rule's action applies to them (drop, tag or warn; a name cannot be
// fixed by rewrite).
type DeprecatedConfig struct {
	// Prefixes of deprecated metric names.
	Prefixes []string `yaml:"prefixes" json:"prefixes"`
	// Use says what to use instead, added to the reason.
	Use string `yaml:"use,omitempty" json:"use,omitempty"`
}

func (d *DeprecatedConfig) validate(path string, action Action) error {
	if len(d.Prefixes) == 0 {
		return fmt.Errorf("%s.prefixes: required; list the deprecated metric name prefixes, e.g. [\"old_client_\"]", path)
	}
	for i, p := range d.Prefixes {
		if p == "" {
			return fmt.Errorf("%s.prefixes[%d]: empty prefix; remove it", path, i)
		}
	}
	if action == ActionRewrite {
		return fmt.Errorf("%s: a deprecated metric cannot be fixed by action rewrite; use drop, tag or warn", path)
	}
	return nil
}

// ScopeConfig restricts a rule. An empty scope matches every series.
type ScopeConfig struct {
	// Tenants the rule applies to; empty means all tenants.
	Tenants []string `yaml:"tenants,omitempty" json:"tenants,omitempty"`
	// Selector is a PromQL series selector such as `{job=~"api.*"}`.
	Selector string `yaml:"selector,omitempty" json:"selector,omitempty"`
}

// NamingConfig holds standards on metric names.
type NamingConfig struct {
	// Charset is "legacy" ([a-zA-Z_:][a-zA-Z0-9_:]*) or "utf8"; empty skips.
	Charset string `yaml:"charset,omitempty" json:"charset,omitempty"`
	// SnakeCase requires names made of [a-z0-9_:], starting with a letter,
	// without "__" and without a trailing "_".
	SnakeCase bool `yaml:"snake_case,omitempty" json:"snake_case,omitempty"`
	// RequiredPrefixes requires one of these prefixes; rewrite prepends the
	// first one.
	RequiredPrefixes []string `yaml:"required_prefixes,omitempty" json:"required_prefixes,omitempty"`
	// TypeSuffixes checks suffixes against the metadata type: counters end in
	// _total, info metrics in _info, histogram buckets (series with le) in
	// _bucket, and no other type ends in _total. Needs the type.
	TypeSuffixes bool `yaml:"type_suffixes,omitempty" json:"type_suffixes,omitempty"`
	// UnitSuffixes requires the metadata unit (when set) as a suffix of the
	// name before any type suffix, e.g. request_duration_seconds_bucket.
	UnitSuffixes bool `yaml:"unit_suffixes,omitempty" json:"unit_suffixes,omitempty"`
	// DiscouragedUnits are unit words (e.g. milliseconds) not allowed as a
	// name token. Cannot be rewritten (the values would be wrong).
	DiscouragedUnits []string `yaml:"discouraged_units,omitempty" json:"discouraged_units,omitempty"`
}

// LabelsConfig holds standards on label names and values.
type LabelsConfig struct {
	// Required label names; a missing one cannot be rewritten.
	Required []string `yaml:"required,omitempty" json:"required,omitempty"`
	// Forbidden label names; rewrite removes them.
	Forbidden []string `yaml:"forbidden,omitempty" json:"forbidden,omitempty"`
	// Allowed label names (plus __name__); rewrite removes the others.
	Allowed []string `yaml:"allowed,omitempty" json:"allowed,omitempty"`
	// Normalize lists value normalisers, applied in order.
	Normalize []NormalizeConfig `yaml:"normalize,omitempty" json:"normalize,omitempty"`
}

// Overflow says how an over-long value is shortened.
type Overflow string

// Overflow strategies.
const (
	// OverflowTruncate cuts the value at the maximum length.
	OverflowTruncate Overflow = "truncate"
	// OverflowHash keeps a prefix and appends "~" and a 16-hex-digit hash of
	// the whole value, so distinct long values stay distinct.
	OverflowHash Overflow = "hash"
)

// Built-in value normalisers.
const (
	BuiltinUUID   = "uuid"   // 8-4-4-4-12 hex digits → :uuid
	BuiltinNumber = "number" // all digits → :id
	BuiltinHexID  = "hex_id" // 16+ hex digits with at least one digit → :hex
	BuiltinIP     = "ip"     // IPv4 or IPv6 address → :ip
	BuiltinEmail  = "email"  // local@domain.tld → :email
)

var allBuiltins = []string{BuiltinUUID, BuiltinNumber, BuiltinHexID, BuiltinIP, BuiltinEmail}

// NormalizeConfig normalises the values of some labels. The steps run in the
// order trim_space, lowercase, regex/replacement, builtin, max_length.
// Built-in normalisers work on segments of the value separated by any of
// "/?&=;, " so a URL path such as /users/123/orders becomes /users/:id/orders.
type NormalizeConfig struct {
	// Labels whose values are normalised.
	Labels []string `yaml:"labels" json:"labels"`
	// TrimSpace removes leading and trailing white space.
	TrimSpace bool `yaml:"trim_space,omitempty" json:"trim_space,omitempty"`
	// Lowercase lower-cases the value.
	Lowercase bool `yaml:"lowercase,omitempty" json:"lowercase,omitempty"`
	// Regex (RE2, unanchored) is replaced by Replacement everywhere in the
	// value; $1 and ${name} expand capture groups.
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
	// Replacement for Regex.
	Replacement string `yaml:"replacement,omitempty" json:"replacement,omitempty"`
	// Builtin lists built-in normalisers: uuid, hex_id, number, ip, email.
	Builtin []string `yaml:"builtin,omitempty" json:"builtin,omitempty"`
	// MaxLength in bytes; 0 means no limit.
	MaxLength int `yaml:"max_length,omitempty" json:"max_length,omitempty"`
	// Overflow is truncate (default) or hash.
	Overflow Overflow `yaml:"overflow,omitempty" json:"overflow,omitempty"`
}

// LimitsConfig holds size limits; 0 disables a limit.
type LimitsConfig struct {
	// MaxLabels per series, __name__ included. Cannot be rewritten.
	MaxLabels int `yaml:"max_labels,omitempty" json:"max_labels,omitempty"`
	// MaxLabelNameLength in bytes. Cannot be rewritten.
	MaxLabelNameLength int `yaml:"max_label_name_length,omitempty" json:"max_label_name_length,omitempty"`
	// MaxLabelValueLength in bytes (metric name excluded); rewrite shortens.
	MaxLabelValueLength int `yaml:"max_label_value_length,omitempty" json:"max_label_value_length,omitempty"`
	// ValueOverflow is truncate (default) or hash.
	ValueOverflow Overflow `yaml:"value_overflow,omitempty" json:"value_overflow,omitempty"`
}

// kind returns the rule kind, or "" when none or several are set.
// Kind returns the rule's kind (KindRelabel, ...) and how many kinds it
// sets (a valid rule sets exactly one).
func (r *RuleConfig) Kind() (string, int) {
	n, k := 0, ""
	if len(r.RelabelConfigs) > 0 {
		n, k = n+1, KindRelabel
	}
	if r.Naming != nil {
		n, k = n+1, KindNaming
	}
	if r.Labels != nil {
		n, k = n+1, KindLabels
	}
	if r.Limits != nil {
		n, k = n+1, KindLimits
	}
	if r.Plugin != nil {
		n, k = n+1, KindPlugin
	}
	if r.Deprecated != nil {
		n, k = n+1, KindDeprecated
	}
	if r.Unused != nil {
		n, k = n+1, KindUnused
	}
	return k, n
}

// EffectiveMode returns the rule's mode, ModeEnforce when unset.
func (r *RuleConfig) EffectiveMode() Mode {
	if r.Mode == "" {
		return ModeEnforce
	}
	return r.Mode
}

// validate checks a rule; path is its position such as "rules[3]".
func (r *RuleConfig) validate(path string, scheme model.ValidationScheme) error {
	if r.Name == "" {
		return fmt.Errorf("%s.name: required; give every rule a unique name", path)
	}
	path = fmt.Sprintf("%s (%q)", path, r.Name)
	switch r.Mode {
	case "", ModeEnforce, ModeShadow:
	default:
		return fmt.Errorf("%s.mode: unknown mode %q; use enforce or shadow", path, r.Mode)
	}
	if r.TagLabel != "" && !scheme.IsValidLabelName(r.TagLabel) {
		return fmt.Errorf("%s.tag_label: %q is not a valid label name", path, r.TagLabel)
	}
	for i, t := range r.Scope.Tenants {
		if t == "" {
			return fmt.Errorf("%s.scope.tenants[%d]: empty tenant; remove it", path, i)
		}
	}
	if r.Scope.Selector != "" {
		if _, err := ParseSelector(r.Scope.Selector); err != nil {
			return fmt.Errorf("%s.scope.selector: %w; write a selector such as {job=~\"api.*\"}", path, err)
		}
	}
	kind, n := r.Kind()
	if n != 1 {
		return fmt.Errorf("%s: set exactly one of relabel_configs, naming, labels, limits, plugin, deprecated, unused (found %d)", path, n)
	}
	if kind == KindPlugin {
		if r.Action != "" {
			return fmt.Errorf("%s.action: plugin rules take no action (the plugin's verdict decides; on_error says what a failure does); remove it", path)
		}
		if err := r.Plugin.Validate(); err != nil {
			return fmt.Errorf("%s.plugin.%w", path, err)
		}
		return nil
	}
	if kind == KindRelabel {
		if r.Action != "" {
			return fmt.Errorf("%s.action: relabel rules take no action (relabel_configs decide); remove it", path)
		}
		for i, c := range r.RelabelConfigs {
			if _, _, err := PrepareRelabel(c, scheme); err != nil {
				return fmt.Errorf("%s.relabel_configs[%d]: %w", path, i, err)
			}
		}
		return nil
	}
	switch r.Action {
	case ActionDrop, ActionRewrite, ActionTag, ActionWarn:
	case "":
		return fmt.Errorf("%s.action: required for %s rules; use drop, rewrite, tag or warn", path, kind)
	default:
		return fmt.Errorf("%s.action: unknown action %q; use drop, rewrite, tag or warn", path, r.Action)
	}
	rewrite := r.Action == ActionRewrite
	switch kind {
	case KindNaming:
		return r.Naming.validate(path+".naming", rewrite)
	case KindDeprecated:
		return r.Deprecated.validate(path+".deprecated", r.Action)
	case KindUnused:
		if rewrite {
			return fmt.Errorf("%s.unused: an unused metric cannot be fixed by action rewrite; use drop, tag or warn", path)
		}
		return nil
	case KindLabels:
		return r.Labels.validate(path+".labels", rewrite)
	default:
		return r.Limits.validate(path+".limits", rewrite)
	}
}

func (n *NamingConfig) validate(path string, rewrite bool) error {
	switch n.Charset {
	case "", "legacy", "utf8":
	default:
		return fmt.Errorf("%s.charset: unknown charset %q; use legacy or utf8", path, n.Charset)
	}
	for i, p := range n.RequiredPrefixes {
		if p == "" {
			return fmt.Errorf("%s.required_prefixes[%d]: empty prefix; remove it", path, i)
		}
	}
	for i, u := range n.DiscouragedUnits {
		if u == "" {
			return fmt.Errorf("%s.discouraged_units[%d]: empty unit; remove it", path, i)
		}
	}
	if rewrite && len(n.DiscouragedUnits) > 0 {
		return fmt.Errorf("%s.discouraged_units: cannot be fixed by action rewrite (the sample values would be wrong); put it in a rule with action drop, tag or warn", path)
	}
	if n.Charset == "" && !n.SnakeCase && len(n.RequiredPrefixes) == 0 && !n.TypeSuffixes && !n.UnitSuffixes && len(n.DiscouragedUnits) == 0 {
		return fmt.Errorf("%s: no check enabled; set charset, snake_case, required_prefixes, type_suffixes, unit_suffixes or discouraged_units", path)
	}
	return nil
}

func (l *LabelsConfig) validate(path string, rewrite bool) error {
	if rewrite && len(l.Required) > 0 {
		return fmt.Errorf("%s.required: a missing label cannot be fixed by action rewrite; put it in a rule with action drop, tag or warn", path)
	}
	for _, list := range []struct {
		field string
		names []string
	}{{"required", l.Required}, {"forbidden", l.Forbidden}, {"allowed", l.Allowed}} {
		for i, name := range list.names {
			if !model.UTF8Validation.IsValidLabelName(name) {
				return fmt.Errorf("%s.%s[%d]: %q is not a valid label name", path, list.field, i, name)
			}
		}
	}
	for i := range l.Normalize {
		if err := l.Normalize[i].validate(fmt.Sprintf("%s.normalize[%d]", path, i)); err != nil {
			return err
		}
	}
	if len(l.Required)+len(l.Forbidden)+len(l.Allowed)+len(l.Normalize) == 0 {
		return fmt.Errorf("%s: no check enabled; set required, forbidden, allowed or normalize", path)
	}
	return nil
}

func (n *NormalizeConfig) validate(path string) error {
	if len(n.Labels) == 0 {
		return fmt.Errorf("%s.labels: required; list the labels whose values are normalised", path)
	}
	for i, name := range n.Labels {
		if name == model.MetricNameLabel {
			return fmt.Errorf("%s.labels[%d]: __name__ cannot be normalised here; use a naming or relabel rule", path, i)
		}
		if !model.UTF8Validation.IsValidLabelName(name) {
			return fmt.Errorf("%s.labels[%d]: %q is not a valid label name", path, i, name)
		}
	}
	if n.Regex != "" {
		if _, err := regexp.Compile(n.Regex); err != nil {
			return fmt.Errorf("%s.regex: %w", path, err)
		}
	} else if n.Replacement != "" {
		return fmt.Errorf("%s.replacement: set without regex; add a regex or remove the replacement", path)
	}
	for i, b := range n.Builtin {
		if !slices.Contains(allBuiltins, b) {
			return fmt.Errorf("%s.builtin[%d]: unknown normaliser %q; use one of %v", path, i, b, allBuiltins)
		}
	}
	if err := validateOverflow(path+".max_length", path+".overflow", n.MaxLength, n.Overflow); err != nil {
		return err
	}
	if !n.TrimSpace && !n.Lowercase && n.Regex == "" && len(n.Builtin) == 0 && n.MaxLength == 0 {
		return fmt.Errorf("%s: no step enabled; set trim_space, lowercase, regex, builtin or max_length", path)
	}
	return nil
}

func validateOverflow(lenField, overflowField string, maxLen int, o Overflow) error {
	if maxLen < 0 {
		return fmt.Errorf("%s: must not be negative, got %d", lenField, maxLen)
	}
	switch o {
	case "", OverflowTruncate:
	case OverflowHash:
		if maxLen > 0 && maxLen < HashSuffixLen+1 {
			return fmt.Errorf("%s: must be at least %d with %s hash, got %d", lenField, HashSuffixLen+1, overflowField, maxLen)
		}
	default:
		return fmt.Errorf("%s: unknown overflow %q; use truncate or hash", overflowField, o)
	}
	return nil
}

func (l *LimitsConfig) validate(path string, rewrite bool) error {
	if l.MaxLabels < 0 || l.MaxLabelNameLength < 0 {
		return fmt.Errorf("%s: limits must not be negative", path)
	}
	if rewrite && (l.MaxLabels > 0 || l.MaxLabelNameLength > 0) {
		return fmt.Errorf("%s: max_labels and max_label_name_length cannot be fixed by action rewrite; put them in a rule with action drop, tag or warn", path)
	}
	if err := validateOverflow(path+".max_label_value_length", path+".value_overflow", l.MaxLabelValueLength, l.ValueOverflow); err != nil {
		return err
	}
	if l.MaxLabels == 0 && l.MaxLabelNameLength == 0 && l.MaxLabelValueLength == 0 {
		return fmt.Errorf("%s: no limit set; set max_labels, max_label_name_length or max_label_value_length", path)
	}
	return nil
}

// HashSuffixLen is the length of "~" plus 16 hex digits added by hash
// overflow.
const HashSuffixLen = 17

// ParseSelector parses a PromQL series selector (a rule's scope.selector)
// into matchers.
func ParseSelector(s string) ([]*labels.Matcher, error) {
	return parser.NewParser(parser.Options{}).ParseMetricSelector(s)
}

// PrepareRelabel checks one entry of relabel_configs and returns it ready
// to apply: a copy with the name validation scheme and the default regex
// filled in, and the matcher of its regex.
func PrepareRelabel(c *relabel.Config, scheme model.ValidationScheme) (relabel.Config, *labels.FastRegexMatcher, error) {
	if c == nil {
		return relabel.Config{}, nil, errors.New("empty entry; remove it")
	}
	cp := *c
	if cp.NameValidationScheme == model.UnsetValidation {
		cp.NameValidationScheme = scheme
	}
	if cp.Regex.Regexp == nil {
		cp.Regex = relabel.MustNewRegexp("")
	}
	if err := cp.Validate(scheme); err != nil {
		return relabel.Config{}, nil, err
	}
	fm, err := labels.NewFastRegexMatcher(cp.Regex.String())
	if err != nil {
		return relabel.Config{}, nil, fmt.Errorf("regex: %w", err)
	}
	return cp, fm, nil
}
