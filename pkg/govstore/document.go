package govstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/cardinality"
	"github.com/promgov/promgov/pkg/rules/ruleconfig"
	"github.com/promgov/promgov/pkg/usage"
)

// MaxBodyBytes bounds a governance document (and so a version object).
const MaxBodyBytes = 4 << 20

// Document is the governance part of the configuration file: what the store
// versions. The process settings (addresses, the WAL, the backends, ...)
// stay in the file.
type Document struct {
	// Rules is the distributors' ordered `rules:` list.
	Rules []ruleconfig.RuleConfig `yaml:"rules"`
	// Cardinality holds the ingesters' `cardinality.limits`.
	Cardinality CardinalitySection `yaml:"cardinality"`
	// Usage holds the distributors' `usage.drop_unused` policy.
	Usage UsageSection `yaml:"usage"`
	// Aggregations is the ingesters' `aggregations:` list. nil (the key
	// absent, as in versions written before aggregations were versioned)
	// leaves each ingester's file in force; `aggregations: []` removes
	// every rule.
	Aggregations *[]aggregate.RuleConfig `yaml:"aggregations,omitempty"`
}

// CardinalitySection is the governed part of the `cardinality:` section.
type CardinalitySection struct {
	Limits cardinality.LimitsConfig `yaml:"limits"`
}

// UsageSection is the governed part of the `usage:` section.
type UsageSection struct {
	DropUnused usage.DropConfig `yaml:"drop_unused"`
}

// DefaultDocument is the document of a configuration that sets nothing:
// no rules, the default cardinality limits (those of the flags), drop_unused
// off. A candidate that leaves a section out gets these values.
func DefaultDocument() Document {
	var d Document
	fs := flag.NewFlagSet("defaults", flag.ContinueOnError)
	d.Cardinality.Limits.RegisterFlags("", fs)
	d.Usage.DropUnused = usage.DefaultConfig().DropUnused
	return d
}

// ParseDocument decodes a governance YAML document strictly (unknown fields
// are errors naming the field) over DefaultDocument and validates it. Every
// error names the field and the fix.
func ParseDocument(b []byte) (Document, error) {
	if len(b) > MaxBodyBytes {
		return Document{}, fmt.Errorf("document: %d bytes is over the limit of %d bytes", len(b), MaxBodyBytes)
	}
	d := DefaultDocument()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return Document{}, fmt.Errorf("document: %w", err)
	}
	if err := d.Validate(); err != nil {
		return Document{}, err
	}
	return d, nil
}

// Validate checks every section with the validation the binaries apply to
// the file; errors name the field (rules[2].action, cardinality.limits...).
// Rule names are checked under the default (utf8) name validation scheme; a
// node configured with the legacy scheme may still reject a version, which
// then is marked failed.
func (d *Document) Validate() error {
	rc := ruleconfig.DefaultConfig()
	rc.Rules = d.Rules
	if err := rc.Validate(); err != nil {
		return err
	}
	if err := d.Cardinality.Limits.Validate(); err != nil {
		return fmt.Errorf("cardinality.limits.%w", err)
	}
	if err := d.Usage.DropUnused.Validate(); err != nil {
		return fmt.Errorf("usage.drop_unused: %w", err)
	}
	if d.Aggregations != nil {
		if err := (&aggregate.Config{Rules: *d.Aggregations}).Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Canonical is the document's normalised YAML: the form the store keeps,
// hashes and diffs, so that equal documents have equal hashes whatever the
// author's formatting.
func (d *Document) Canonical() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	return buf.Bytes(), nil
}

// Normalize parses and validates a candidate and returns its canonical YAML.
func Normalize(b []byte) (Document, []byte, error) {
	d, err := ParseDocument(b)
	if err != nil {
		return Document{}, nil, err
	}
	c, err := d.Canonical()
	if err != nil {
		return Document{}, nil, err
	}
	return d, c, nil
}

// ContentHash is the content hash of a canonical body: "sha256:<hex>".
func ContentHash(body []byte) string {
	s := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(s[:])
}
