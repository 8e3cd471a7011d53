package remotewrite

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigRegisterFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags("distributor.", fs)
	require.Equal(t, DefaultMaxCompressedBytes, cfg.MaxCompressedBytes)
	require.Equal(t, DefaultMaxDecodedBytes, cfg.MaxDecodedBytes)
	require.Equal(t, "anonymous", cfg.DefaultTenant)
	require.Equal(t, "X-Scope-OrgID", cfg.TenantHeader)
	require.Equal(t, NameSchemeUTF8, cfg.NameValidationScheme)
	require.NoError(t, cfg.Validate())

	require.NoError(t, fs.Parse([]string{
		"--distributor.max-compressed-bytes=100",
		"--distributor.max-decoded-bytes=200",
		"--distributor.default-tenant=fake",
		"--distributor.tenant-header=X-Tenant",
		"--distributor.name-validation-scheme=legacy",
	}))
	require.Equal(t, NameSchemeLegacy, cfg.NameValidationScheme)
	require.Equal(t, int64(100), cfg.MaxCompressedBytes)
	require.Equal(t, int64(200), cfg.MaxDecodedBytes)
	require.Equal(t, "fake", cfg.DefaultTenant)
	require.Equal(t, "X-Tenant", cfg.TenantHeader)
	require.Equal(t, "distributor.max-compressed-bytes", NewDecoder(cfg, "distributor.").flagName(flagMaxCompressed))

	var other Config
	other.RegisterFlags("", flag.NewFlagSet("other", flag.ContinueOnError))
	require.Equal(t, "max-decoded-bytes", NewDecoder(other, "").flagName(flagMaxDecoded))
	yamlOnly := DefaultConfig()
	require.Equal(t, "distributor.max-decoded-bytes", NewDecoder(yamlOnly, testFlagPrefix).flagName(flagMaxDecoded))
}

// testFlagPrefix is the prefix the distributor registers the flags under,
// which the errors these tests check name.
const testFlagPrefix = "distributor."

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		mutate  func(*Config)
		wantErr string
	}{
		"defaults":             {mutate: func(*Config) {}},
		"zero compressed":      {mutate: func(c *Config) { c.MaxCompressedBytes = 0 }, wantErr: "max_compressed_bytes"},
		"negative decoded":     {mutate: func(c *Config) { c.MaxDecodedBytes = -1 }, wantErr: "max_decoded_bytes"},
		"decoded < compressed": {mutate: func(c *Config) { c.MaxDecodedBytes = c.MaxCompressedBytes - 1 }, wantErr: "raise max_decoded_bytes"},
		"empty tenant":         {mutate: func(c *Config) { c.DefaultTenant = "" }, wantErr: "default_tenant"},
		"empty header":         {mutate: func(c *Config) { c.TenantHeader = "" }, wantErr: "tenant_header"},
		"legacy scheme":        {mutate: func(c *Config) { c.NameValidationScheme = NameSchemeLegacy }},
		"unknown scheme":       {mutate: func(c *Config) { c.NameValidationScheme = "UTF-8" }, wantErr: `name_validation_scheme must be "utf8" or "legacy", got "UTF-8"`},
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
