// Package ruleconfig is the configuration of the governance rules: the
// top-level `rules:` list and `rules_*` settings of the shared file, and
// their validation. It is apart from the engine (pkg/rules) so that what
// only reads or versions the rules (the governance store) does not link
// the engine.
package ruleconfig

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Default values of the engine-wide settings.
const (
	DefaultNameValidationScheme = "utf8"                 // rules_name_validation_scheme
	DefaultTypeCacheSize        = 100000                 // rules_type_cache_size
	DefaultTestMaxBodyBytes     = 4 << 20                // rules_test_max_body_bytes
	DefaultTagLabel             = "governance_violation" // rules_tag_label
)

// Config is the rules section of promgov's shared configuration file. Its
// keys are meant to be inlined at the top level of that file (`rules:` is a
// list applied in order); the other keys are engine-wide settings, all
// prefixed with `rules_`.
type Config struct {
	// Rules is the ordered list of governance rules.
	Rules []RuleConfig `yaml:"rules,omitempty" json:"rules"`
	// NameValidationScheme is "utf8" or "legacy"; it is used by relabel
	// rules and to decide whether a rewritten series is still valid.
	NameValidationScheme string `yaml:"rules_name_validation_scheme,omitempty" json:"rules_name_validation_scheme,omitempty"`
	// TagLabel is the label added by the tag action when a rule does not set
	// its own tag_label.
	TagLabel string `yaml:"rules_tag_label,omitempty" json:"rules_tag_label,omitempty"`
	// TypeCacheSize bounds the number of (tenant, metric family) entries the
	// distributor's TypeCache remembers from RW 1.0 metadata.
	TypeCacheSize int `yaml:"rules_type_cache_size,omitempty" json:"rules_type_cache_size,omitempty"`
	// TestMaxBodyBytes bounds the request body of POST /promgov/api/v1/rules/test.
	TestMaxBodyBytes int64 `yaml:"rules_test_max_body_bytes,omitempty" json:"rules_test_max_body_bytes,omitempty"`
}

// DefaultConfig returns a Config with no rules and default settings.
func DefaultConfig() Config {
	return Config{
		NameValidationScheme: DefaultNameValidationScheme,
		TagLabel:             DefaultTagLabel,
		TypeCacheSize:        DefaultTypeCacheSize,
		TestMaxBodyBytes:     DefaultTestMaxBodyBytes,
	}
}

// RegisterFlags registers the engine-wide settings (not the rules, which only
// live in the configuration file) with fs, using c's current values as
// defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.NameValidationScheme, prefix+"rules.name-validation-scheme", c.NameValidationScheme,
		"Metric and label name validation for rules: utf8 or legacy.")
	fs.StringVar(&c.TagLabel, prefix+"rules.tag-label", c.TagLabel,
		"Label added by rules with action tag (value: the rule name).")
	fs.IntVar(&c.TypeCacheSize, prefix+"rules.type-cache-size", c.TypeCacheSize,
		"Maximum (tenant, metric family) entries remembered from remote write 1.0 metadata.")
	fs.Int64Var(&c.TestMaxBodyBytes, prefix+"rules.test-max-body-bytes", c.TestMaxBodyBytes,
		"Maximum request body size of POST /promgov/api/v1/rules/test.")
}

// Validate checks the settings and every rule. Errors name the offending yaml
// field and how to fix it.
func (c *Config) Validate() error {
	scheme, err := c.Scheme()
	if err != nil {
		return err
	}
	if c.TagLabel != "" && !scheme.IsValidLabelName(c.TagLabel) {
		return fmt.Errorf("rules_tag_label: %q is not a valid label name; use e.g. %q", c.TagLabel, DefaultTagLabel)
	}
	if c.TypeCacheSize < 0 {
		return fmt.Errorf("rules_type_cache_size: must not be negative, got %d; use 0 for the default %d", c.TypeCacheSize, DefaultTypeCacheSize)
	}
	if c.TestMaxBodyBytes < 0 {
		return fmt.Errorf("rules_test_max_body_bytes: must not be negative, got %d; use 0 for the default %d", c.TestMaxBodyBytes, DefaultTestMaxBodyBytes)
	}
	seen := make(map[string]int, len(c.Rules))
	for i := range c.Rules {
		r := &c.Rules[i]
		if j, ok := seen[r.Name]; ok && r.Name != "" {
			return fmt.Errorf("rules[%d].name: %q is already used by rules[%d]; rule names must be unique", i, r.Name, j)
		}
		seen[r.Name] = i
		if err := r.validate(fmt.Sprintf("rules[%d]", i), scheme); err != nil {
			return err
		}
	}
	return nil
}

// Scheme returns the configured name validation scheme.
func (c *Config) Scheme() (model.ValidationScheme, error) {
	switch c.NameValidationScheme {
	case "", "utf8":
		return model.UTF8Validation, nil
	case "legacy":
		return model.LegacyValidation, nil
	default:
		return model.UnsetValidation, fmt.Errorf("rules_name_validation_scheme: unknown scheme %q; use utf8 or legacy", c.NameValidationScheme)
	}
}

// DefaultTag returns the tag label of rules that set none.
func (c *Config) DefaultTag() string {
	if c.TagLabel == "" {
		return DefaultTagLabel
	}
	return c.TagLabel
}

// ErrInvalidConfig wraps every error returned by LoadConfig and Compile for
// a configuration the user has to fix.
var ErrInvalidConfig = errors.New("invalid rules config")

// LoadConfig parses the rules section out of a whole promgov configuration
// document. Keys that do not belong to the rules section are ignored (they
// belong to other components); inside the rules section unknown fields are
// errors. The result is validated. Missing settings take their defaults.
func LoadConfig(data []byte) (Config, error) {
	// Other top-level keys are collected in Other (and ignored); inside the
	// rules section the decoder is strict. Decoding the original document
	// keeps line numbers in error messages right.
	doc := struct {
		Config `yaml:",inline"`
		Other  map[string]yaml.Node `yaml:",inline"`
	}{Config: DefaultConfig()}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: parse yaml: %w", ErrInvalidConfig, err)
	}
	cfg := doc.Config
	if cfg.TypeCacheSize == 0 {
		cfg.TypeCacheSize = DefaultTypeCacheSize
	}
	if cfg.TestMaxBodyBytes == 0 {
		cfg.TestMaxBodyBytes = DefaultTestMaxBodyBytes
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

// LoadConfigFile reads path and calls LoadConfig.
func LoadConfigFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read rules config %s: %w", path, err)
	}
	cfg, err := LoadConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("load rules config %s: %w", path, err)
	}
	return cfg, nil
}
