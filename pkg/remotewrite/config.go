// Package remotewrite implements the distributor's HTTP edge for Prometheus
// Remote Write 1.0 and 2.0: content negotiation, size limits checked before
// allocation, snappy and protobuf decoding, conversion of 1.0 requests into
// the internal Remote Write 2.0 form, per-series validation, and helpers for
// splitting a request between owners (MetricName, Builder, Counts).
//
// The internal form is a writev2.Request whose strings are heap copies: gogo
// generated Unmarshal copies every string out of the input buffer, so nothing
// returned by this package aliases pooled memory.
package remotewrite

import (
	"errors"
	"flag"
	"fmt"
)

// Flag names (without prefix) registered by Config.RegisterFlags.
const (
	flagMaxCompressed = "max-compressed-bytes"
	flagMaxDecoded    = "max-decoded-bytes"
	flagDefaultTenant = "default-tenant"
	flagTenantHeader  = "tenant-header"
	flagNameScheme    = "name-validation-scheme"

	flagMaxLabelNameLength     = "max-label-name-length"
	flagMaxLabelValueLength    = "max-label-value-length"
	flagMaxLabelNamesPerSeries = "max-label-names-per-series"
	flagMaxSeriesPerRequest    = "max-series-per-request"
	flagMaxBucketsPerHistogram = "max-buckets-per-histogram"
)

// Defaults for Config.
const (
	DefaultMaxCompressedBytes int64 = 10 << 20
	DefaultMaxDecodedBytes    int64 = 64 << 20
	DefaultTenantName               = "anonymous"
	DefaultTenantHeader             = "X-Scope-OrgID"

	// Per-series bounds, the reference being Mimir's validation limits
	// (max_label_name_length 1024, max_label_value_length 2048,
	// max_label_names_per_series 30), loosened where real exporters need
	// more: kube-state-metrics' *_labels series and OpenTelemetry resource
	// attributes carry long values and many labels.
	DefaultMaxLabelNameLength     = 1024
	DefaultMaxLabelValueLength    = 4096
	DefaultMaxLabelNamesPerSeries = 64
	// Prometheus sends at most 2,000 samples per request by default and
	// vmagent 10,000 rows; 100,000 leaves room for any agent's batching.
	DefaultMaxSeriesPerRequest = 100_000
	// OpenTelemetry's exponential histograms default to 160 buckets and
	// Prometheus limits native histograms per scrape on request; 4,096
	// buckets of the widest schema span 2^16.
	DefaultMaxBucketsPerHistogram = 4096
)

// Name validation schemes (Config.NameValidationScheme), as Prometheus 3.x
// names them in metric_name_validation_scheme.
const (
	// NameSchemeUTF8 accepts any non-empty, valid UTF-8 metric and label
	// name: what Prometheus 3.x's remote-write receiver accepts.
	NameSchemeUTF8 = "utf8"
	// NameSchemeLegacy accepts only metric names matching
	// [a-zA-Z_:][a-zA-Z0-9_:]* and label names matching
	// [a-zA-Z_][a-zA-Z0-9_]*: for backends that predate UTF-8 names.
	NameSchemeLegacy = "legacy"
)

// Config configures request decoding at the distributor edge.
type Config struct {
	// MaxCompressedBytes bounds the snappy-compressed request body.
	MaxCompressedBytes int64 `yaml:"max_compressed_bytes"`
	// MaxDecodedBytes bounds the decompressed protobuf payload, checked on the
	// snappy block header before any allocation.
	MaxDecodedBytes int64 `yaml:"max_decoded_bytes"`
	// DefaultTenant is used when the tenant header is absent or empty.
	DefaultTenant string `yaml:"default_tenant"`
	// TenantHeader is the HTTP header carrying the tenant ID.
	TenantHeader string `yaml:"tenant_header"`
	// NameValidationScheme is the character set series names must use:
	// NameSchemeUTF8 (default) or NameSchemeLegacy. Label values must be
	// valid UTF-8 under both.
	NameValidationScheme string `yaml:"name_validation_scheme"`

	// MaxLabelNameLength bounds a label name in bytes.
	MaxLabelNameLength int `yaml:"max_label_name_length"`
	// MaxLabelValueLength bounds a label value in bytes.
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxLabelNamesPerSeries bounds the labels of one series, __name__
	// included.
	MaxLabelNamesPerSeries int `yaml:"max_label_names_per_series"`
	// MaxSeriesPerRequest bounds the series of one request; a larger
	// request gets 413 before the rest of it is decoded.
	MaxSeriesPerRequest int `yaml:"max_series_per_request"`
	// MaxBucketsPerHistogram bounds the buckets (and spans, and custom
	// bounds) of one native histogram sample.
	MaxBucketsPerHistogram int `yaml:"max_buckets_per_histogram"`
}

// DefaultConfig returns a Config with every field at its default.
func DefaultConfig() Config {
	return Config{
		MaxCompressedBytes: DefaultMaxCompressedBytes,
		MaxDecodedBytes:    DefaultMaxDecodedBytes,
		DefaultTenant:      DefaultTenantName,
		TenantHeader:       DefaultTenantHeader,

		MaxLabelNameLength:     DefaultMaxLabelNameLength,
		MaxLabelValueLength:    DefaultMaxLabelValueLength,
		MaxLabelNamesPerSeries: DefaultMaxLabelNamesPerSeries,
		MaxSeriesPerRequest:    DefaultMaxSeriesPerRequest,
		MaxBucketsPerHistogram: DefaultMaxBucketsPerHistogram,
		NameValidationScheme:   NameSchemeUTF8,
	}
}

// RegisterFlags sets c to its defaults and registers its flags on fs, each
// name prefixed with prefix (the distributor uses "distributor."); give
// NewDecoder the same prefix.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	*c = DefaultConfig()
	fs.Int64Var(&c.MaxCompressedBytes, prefix+flagMaxCompressed, c.MaxCompressedBytes,
		"Maximum size in bytes of a snappy-compressed remote write request body; larger requests get 413.")
	fs.Int64Var(&c.MaxDecodedBytes, prefix+flagMaxDecoded, c.MaxDecodedBytes,
		"Maximum size in bytes of a decompressed remote write request; larger requests get 413.")
	fs.StringVar(&c.DefaultTenant, prefix+flagDefaultTenant, c.DefaultTenant,
		"Tenant used when the tenant header is absent or empty.")
	fs.StringVar(&c.TenantHeader, prefix+flagTenantHeader, c.TenantHeader,
		"HTTP header carrying the tenant ID.")
	fs.IntVar(&c.MaxLabelNameLength, prefix+flagMaxLabelNameLength, c.MaxLabelNameLength,
		"Maximum length in bytes of a label name; a series with a longer one is refused (400).")
	fs.IntVar(&c.MaxLabelValueLength, prefix+flagMaxLabelValueLength, c.MaxLabelValueLength,
		"Maximum length in bytes of a label value; a series with a longer one is refused (400).")
	fs.IntVar(&c.MaxLabelNamesPerSeries, prefix+flagMaxLabelNamesPerSeries, c.MaxLabelNamesPerSeries,
		"Maximum number of labels of a series, __name__ included; a series with more is refused (400).")
	fs.IntVar(&c.MaxSeriesPerRequest, prefix+flagMaxSeriesPerRequest, c.MaxSeriesPerRequest,
		"Maximum number of series in one remote write request; a larger request gets 413.")
	fs.IntVar(&c.MaxBucketsPerHistogram, prefix+flagMaxBucketsPerHistogram, c.MaxBucketsPerHistogram,
		"Maximum number of buckets of a native histogram sample; a series with a larger one is refused (400).")
	fs.StringVar(&c.NameValidationScheme, prefix+flagNameScheme, c.NameValidationScheme,
		"Characters allowed in metric and label names: utf8 (any valid UTF-8, as Prometheus 3.x) or legacy "+
			"([a-zA-Z_:][a-zA-Z0-9_:]* for metric names, [a-zA-Z_][a-zA-Z0-9_]* for label names). Series that break it get 400.")
}

// Validate reports the first invalid field, naming its yaml key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxCompressedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_compressed_bytes must be > 0, got %d: set a positive byte count (default %d)",
			c.MaxCompressedBytes, DefaultMaxCompressedBytes))
	}
	if c.MaxDecodedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_decoded_bytes must be > 0, got %d: set a positive byte count (default %d)",
			c.MaxDecodedBytes, DefaultMaxDecodedBytes))
	}
	if c.MaxCompressedBytes > 0 && c.MaxDecodedBytes > 0 && c.MaxDecodedBytes < c.MaxCompressedBytes {
		errs = append(errs, fmt.Errorf("max_decoded_bytes (%d) is smaller than max_compressed_bytes (%d): raise max_decoded_bytes or lower max_compressed_bytes",
			c.MaxDecodedBytes, c.MaxCompressedBytes))
	}
	if c.DefaultTenant == "" {
		errs = append(errs, fmt.Errorf("default_tenant must not be empty: set it (default %q)", DefaultTenantName))
	} else if err := ValidateTenantID(c.DefaultTenant); err != nil {
		errs = append(errs, fmt.Errorf("default_tenant: %w", err))
	}
	if c.TenantHeader == "" {
		errs = append(errs, fmt.Errorf("tenant_header must not be empty: set it (default %q)", DefaultTenantHeader))
	}
	for _, b := range []struct {
		key      string
		val, def int
	}{
		{"max_label_name_length", c.MaxLabelNameLength, DefaultMaxLabelNameLength},
		{"max_label_value_length", c.MaxLabelValueLength, DefaultMaxLabelValueLength},
		{"max_label_names_per_series", c.MaxLabelNamesPerSeries, DefaultMaxLabelNamesPerSeries},
		{"max_series_per_request", c.MaxSeriesPerRequest, DefaultMaxSeriesPerRequest},
		{"max_buckets_per_histogram", c.MaxBucketsPerHistogram, DefaultMaxBucketsPerHistogram},
	} {
		if b.val <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0, got %d: set a positive bound (default %d); "+
				"these bounds keep one request from exhausting memory, so there is no unbounded setting",
				b.key, b.val, b.def))
		}
	}
	switch c.NameValidationScheme {
	case NameSchemeUTF8, NameSchemeLegacy:
	default:
		errs = append(errs, fmt.Errorf("name_validation_scheme must be %q or %q, got %q: set one of them (default %q)",
			NameSchemeUTF8, NameSchemeLegacy, c.NameValidationScheme, NameSchemeUTF8))
	}
	return errors.Join(errs...)
}
