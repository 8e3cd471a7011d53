package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// OnError is what a batch gets when its plugin fails.
type OnError string

// The on_error values.
const (
	OnErrorKeep OnError = "keep" // forward the batch's series unchanged (the default)
	OnErrorDrop OnError = "drop" // drop the batch's series
)

// Defaults and bounds of Config.
const (
	DefaultMaxMemoryPages = 256 // 16 MiB: a Go plugin starts with about 3.5 MiB
	DefaultTimeout        = 100 * time.Millisecond
	// MaxModuleBytes bounds the module file Load reads.
	MaxModuleBytes = 64 << 20
	// maxMemoryPages is wasm32's limit, 4 GiB.
	maxMemoryPages = 65536
)

// Config is one plugin's configuration, part of a governance rule of kind
// plugin. It has no flags: plugins are configured with the rules they serve.
type Config struct {
	// Module is the path of the .wasm file, or an http(s) URL it is
	// downloaded from at load (pin it with SHA256).
	Module string `yaml:"module" json:"module"`
	// SHA256 is the hex SHA-256 of the module; when set, a module with
	// other bytes is refused at load (recommended for URLs).
	SHA256 string `yaml:"sha256,omitempty" json:"sha256,omitempty"`
	// Config is passed to the plugin's init as bytes, once per instance
	// (its format is the plugin's: the examples take JSON).
	Config string `yaml:"config,omitempty" json:"config,omitempty"`
	// OnError is the verdict for a batch the plugin fails on: keep
	// (default) or drop.
	OnError OnError `yaml:"on_error,omitempty" json:"on_error,omitempty"`
	// MaxMemoryPages bounds each instance's linear memory, in 64 KiB
	// pages (0: DefaultMaxMemoryPages).
	MaxMemoryPages uint32 `yaml:"max_memory_pages,omitempty" json:"max_memory_pages,omitempty"`
	// Timeout bounds one batch, waiting for an idle instance included;
	// starting a new instance is bounded separately, by ten timeouts (at
	// least 1s), and the batch then gets its whole timeout (0:
	// DefaultTimeout).
	Timeout model.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MaxInstances bounds the instances run concurrently (0: GOMAXPROCS).
	MaxInstances int `yaml:"max_instances,omitempty" json:"max_instances,omitempty"`
}

// withDefaults returns c with the zero values replaced by the defaults
// (MaxInstances is resolved by Load).
func (c Config) withDefaults() Config {
	if c.OnError == "" {
		c.OnError = OnErrorKeep
	}
	if c.MaxMemoryPages == 0 {
		c.MaxMemoryPages = DefaultMaxMemoryPages
	}
	if c.Timeout == 0 {
		c.Timeout = model.Duration(DefaultTimeout)
	}
	return c
}

// Validate checks c, naming the field and the fix.
func (c *Config) Validate() error {
	if c.Module == "" {
		return errors.New("module: empty; set the path of the plugin's .wasm file")
	}
	if c.SHA256 != "" {
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("sha256: %q is not 64 hex digits; use the output of sha256sum on the module", c.SHA256)
		}
	}
	switch c.OnError {
	case "", OnErrorKeep, OnErrorDrop:
	default:
		return fmt.Errorf("on_error: %q is not keep or drop", c.OnError)
	}
	if c.MaxMemoryPages > maxMemoryPages {
		return fmt.Errorf("max_memory_pages: %d is over wasm32's %d (4 GiB); use at most %d, e.g. %d (16 MiB)",
			c.MaxMemoryPages, maxMemoryPages, maxMemoryPages, DefaultMaxMemoryPages)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: %s is negative; use e.g. %s, or 0 for the default", c.Timeout, model.Duration(DefaultTimeout))
	}
	if c.MaxInstances < 0 {
		return fmt.Errorf("max_instances: %d is negative; use 0 for GOMAXPROCS or a positive number", c.MaxInstances)
	}
	return nil
}
